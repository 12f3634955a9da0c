// The UI's only way to the engine: typed wrappers over the Tauri commands (which speak
// the Docker Engine API through bollard). Types come from Rust via ts-rs (../generated).

import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import type { BuildLine } from "../generated/BuildLine";
import type { BuildRequest } from "../generated/BuildRequest";
import type { ContainerAction } from "../generated/ContainerAction";
import type { ContainerRow } from "../generated/ContainerRow";
import type { DiskUsage } from "../generated/DiskUsage";
import type { EngineStatus } from "../generated/EngineStatus";
import type { ExecOutput } from "../generated/ExecOutput";
import type { ImageDetail } from "../generated/ImageDetail";
import type { ImageRow } from "../generated/ImageRow";
import type { LogBatch } from "../generated/LogBatch";
import type { LoginResult } from "../generated/LoginResult";
import type { OperationDone } from "../generated/OperationDone";
import type { ProgressEvent } from "../generated/ProgressEvent";
import type { PruneReport } from "../generated/PruneReport";
import type { RegistrySettings } from "../generated/RegistrySettings";
import type { DockerCommand } from "../generated/DockerCommand";
import type { SearchHit } from "../generated/SearchHit";
import type { RunRequest } from "../generated/RunRequest";
import type { StatsSample } from "../generated/StatsSample";
import type { UserError } from "../generated/UserError";
import type { VolumeRow } from "../generated/VolumeRow";
import type { VolumeListing } from "../generated/VolumeListing";
import type { VolumeEntry } from "../generated/VolumeEntry";
import type { FilePreview } from "../generated/FilePreview";
import type { EngineChoice } from "../generated/EngineChoice";
import type { MachineStatus } from "../generated/MachineStatus";
import type { ComposeAction } from "../generated/ComposeAction";
import type { ComposeFolder } from "../generated/ComposeFolder";
import type { ComposeLogBatch } from "../generated/ComposeLogBatch";
import type { ComposeLogLine } from "../generated/ComposeLogLine";
import type { ComposeProject } from "../generated/ComposeProject";

export type {
  BuildLine, ContainerRow, DiskUsage, EngineStatus, ImageDetail, ImageRow, LogBatch, OperationDone,
  ProgressEvent, PruneReport, RegistrySettings, RunRequest, StatsSample, UserError, VolumeRow,
  VolumeListing, VolumeEntry, FilePreview, EngineChoice, MachineStatus, DockerCommand, SearchHit,
  ComposeAction, ComposeFolder, ComposeLogBatch, ComposeLogLine, ComposeProject,
};

/** Anything thrown by a command, as a UserError (a failing IPC becomes one too). */
export function asUserError(e: unknown): UserError {
  if (e && typeof e === "object" && "message" in e && "next_step" in e) return e as UserError;
  return {
    code: "other",
    message: "Berth's window could not reach its backend.",
    next_step: "Restart Berth.",
    details: String(e),
  };
}

let opCounter = 0;
export function newOp(prefix: string): string {
  opCounter += 1;
  return `${prefix}-${Date.now().toString(36)}-${opCounter}`;
}

export const api = {
  engineStatus: () => invoke<EngineStatus>("engine_status"),
  setEndpoint: (endpoint: string | null) => invoke<EngineStatus>("set_endpoint", { endpoint }),
  setEngineChoice: (choice: EngineChoice) => invoke<EngineStatus>("set_engine_choice", { choice }),
  machineStatus: () => invoke<MachineStatus>("machine_status"),
  machineStart: () => invoke<void>("machine_start"),
  machineStop: () => invoke<void>("machine_stop"),
  machineApply: (cpus: number, memoryMib: number, diskGib: number) =>
    invoke<void>("machine_apply", { cpus, memoryMib, diskGib }),
  machineLogs: () => invoke<string>("machine_logs"),
  registrySettings: () => invoke<RegistrySettings>("registry_settings"),
  dockerCommand: () => invoke<DockerCommand>("docker_command_status"),
  searchImages: (term: string) => invoke<SearchHit[]>("search_images", { term }),
  installDockerCommand: () => invoke<DockerCommand>("install_docker_command"),
  setRegistrySettings: (mirrors: string[], insecureRegistries: string[]) =>
    invoke<RegistrySettings>("set_registry_settings", { mirrors, insecureRegistries }),
  diskUsage: () => invoke<DiskUsage>("disk_usage"),
  cleanup: (allImages: boolean, volumes: boolean) => invoke<PruneReport>("cleanup", { allImages, volumes }),
  listContainers: (all: boolean) => invoke<ContainerRow[]>("list_containers", { all }),
  containerAction: (id: string, action: ContainerAction) => invoke<void>("container_action", { id, action }),
  inspectContainer: (id: string) => invoke<string>("inspect_container", { id }),
  runContainer: (req: RunRequest) => invoke<string>("run_container", { req }),
  suggestHostPort: (preferred: number) => invoke<number>("suggest_host_port", { preferred }),
  listImages: () => invoke<ImageRow[]>("list_images"),
  inspectImage: (reference: string) => invoke<ImageDetail>("inspect_image", { reference }),
  inspectImageJson: (reference: string) => invoke<string>("inspect_image_json", { reference }),
  removeImage: (reference: string, force: boolean) => invoke<void>("remove_image", { reference, force }),
  tagImage: (source: string, target: string) => invoke<void>("tag_image", { source, target }),
  pruneImages: () => invoke<PruneReport>("prune_images"),
  pullImage: (op: string, reference: string, platform: string) => invoke<void>("pull_image", { op, reference, platform }),
  pushImage: (op: string, reference: string) => invoke<void>("push_image", { op, reference }),
  listVolumes: () => invoke<VolumeRow[]>("list_volumes"),
  createVolume: (name: string) => invoke<string>("create_volume", { name }),
  removeVolume: (name: string) => invoke<void>("remove_volume", { name }),
  browseVolume: (volume: string, path: string) => invoke<VolumeListing>("browse_volume", { volume, path }),
  previewVolumeFile: (volume: string, path: string) => invoke<FilePreview>("preview_volume_file", { volume, path }),
  downloadVolumeFile: (volume: string, path: string) => invoke<string>("download_volume_file", { volume, path }),
  streamLogs: (op: string, id: string, follow: boolean) => invoke<void>("stream_logs", { op, id, follow }),
  saveLogs: (id: string, path: string, timestamps: boolean) => invoke<number>("save_logs", { id, path, timestamps }),
  cancel: (op: string) => invoke<void>("cancel", { op }),
  execStart: (session: string, id: string, command: string[], cols: number, rows: number) =>
    invoke<void>("exec_start", { session, id, command, cols, rows }),
  execInput: (session: string, data: string) => invoke<void>("exec_input", { session, data }),
  execResize: (session: string, cols: number, rows: number) => invoke<void>("exec_resize", { session, cols, rows }),
  execClose: (session: string) => invoke<void>("exec_close", { session }),
  streamStats: (op: string, id: string) => invoke<void>("stream_stats", { op, id }),
  buildImage: (op: string, req: BuildRequest) => invoke<void>("build_image", { op, req }),
  listComposeProjects: () => invoke<ComposeProject[]>("list_compose_projects"),
  composeFolder: (folder: string) => invoke<ComposeFolder>("compose_folder", { folder }),
  composeAction: (op: string, project: string, folder: string, action: ComposeAction) =>
    invoke<void>("compose_action", { op, project, folder, action }),
  streamComposeLogs: (op: string, project: string, follow: boolean) =>
    invoke<void>("stream_compose_logs", { op, project, follow }),
  registryLogin: (registry: string, username: string, password: string) =>
    invoke<LoginResult>("registry_login", { registry, username, password }),
};

/** Listen to one event, keeping only payloads for `op`. */
export function onOp<T extends { op: string }>(event: string, op: string, handler: (payload: T) => void): Promise<UnlistenFn> {
  return listen<T>(event, (e) => {
    if (e.payload.op === op) handler(e.payload);
  });
}

/**
 * Watch for the end of long operation `op`: resolves (or rejects with its UserError) when
 * `op-done` arrives. Await this before starting the operation so no event is missed.
 */
export async function watchOp(op: string): Promise<{ done: Promise<OperationDone> }> {
  let settle: (d: OperationDone) => void = () => {};
  const done = new Promise<OperationDone>((resolve, reject) => {
    settle = (d) => (d.error ? reject(d.error) : resolve(d));
  });
  const unlisten = await listen<OperationDone>("op-done", (e) => {
    if (e.payload.op !== op) return;
    unlisten();
    settle(e.payload);
  });
  // Wrapped: an async function returning a promise would wait for it (the op's end).
  done.catch(() => {});
  return { done };
}

export function onExecOutput(handler: (o: ExecOutput) => void): Promise<UnlistenFn> {
  return listen<ExecOutput>("exec-output", (e) => handler(e.payload));
}
