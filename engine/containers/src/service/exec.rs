//! `exec`: a command run inside a running container's namespaces and cgroup, with the
//! caller's stdio or the one given.

use berth_cgroups::Cgroup;

use super::ContainerService;
use crate::record::*;
use crate::ContainerError;

#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub tty: bool,
}

impl ContainerService {
    /// Runs a command in a running container with the caller's stdio; returns its exit code.
    pub fn exec(&self, name_or_id: &str, opts: &ExecOptions) -> Result<i32, ContainerError> {
        let child = self.exec_with(name_or_id, opts, berth_runtime::Stdio::Inherit)?;
        wait_for(child)
    }

    /// Starts a command in a running container with the given stdio (e.g. a pty's slave)
    /// and returns its pid, a child of this process: wait for it with [`wait_for`].
    pub fn exec_with(
        &self,
        name_or_id: &str,
        opts: &ExecOptions,
        stdio: berth_runtime::Stdio,
    ) -> Result<i32, ContainerError> {
        let rec = self.find(name_or_id)?;
        let pid = match self.status(&rec) {
            Status::Running { pid, .. } => pid,
            Status::Paused { .. } => return Err(ContainerError::Paused(rec.name)),
            _ => return Err(ContainerError::NotRunning(rec.name)),
        };
        if opts.cmd.is_empty() {
            return Err(ContainerError::InvalidArgument(
                "exec needs a command, e.g. `berth exec NAME sh`".into(),
            ));
        }
        let p = self.paths(&rec.id);
        let mut user =
            berth_runtime::resolve_user(&p.rootfs(), opts.user.as_deref().unwrap_or(&rec.config.user))?;
        super::start::add_groups(&mut user, &p.rootfs(), &rec.config.group_add)?;
        let mut env = rec.config.env.clone();
        for kv in &opts.env {
            if let Some((k, _)) = kv.split_once('=') {
                env.retain(|e| e.split_once('=').map(|(ek, _)| ek) != Some(k));
                env.push(kv.clone());
            }
        }
        let cgroup_procs = Cgroup::open(&rec.id)?.map(|c| c.join_files()).unwrap_or_default();
        let spec = berth_runtime::ExecSpec {
            args: opts.cmd.clone(),
            env,
            cwd: opts
                .workdir
                .clone()
                .unwrap_or_else(|| rec.config.working_dir.clone()),
            user,
            tty: opts.tty,
            cgroup_procs,
            caps: rec.host.caps()?,
            seccomp_unconfined: crate::record::security_options(&rec.host.security_opt)?.seccomp_unconfined,
        };
        Ok(berth_runtime::exec(pid, &spec, stdio)?)
    }
}

/// Waits for a child of this process; returns its exit code (128 + signal if killed).
pub fn wait_for(pid: i32) -> Result<i32, ContainerError> {
    berth_host::process::wait_child(pid)
        .map(berth_host::process::ChildExit::code)
        .map_err(ContainerError::io("cannot wait for the exec'd process"))
}
