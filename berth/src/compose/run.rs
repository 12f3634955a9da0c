//! The commands of `berth compose`, each over the client: containers are found by
//! Compose's labels (project, service, number), never by name alone.

use std::collections::{HashMap, HashSet};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bollard::models::ContainerSummary;
use bollard::query_parameters as qp;
use futures_util::StreamExt;
use serde_json::Value;

use super::convert::{self, Condition, Plan, CONFIG_HASH, NUMBER, ONEOFF, PROJECT, SERVICE};
use super::project::Project;
use super::ComposeCommand;
use crate::client::{api_error, Client};

/// What Compose v2 prints for each step: ` Container web-1  Started`.
fn say(kind: &str, name: &str, what: &str) {
    eprintln!(" {kind} {name}  {what}");
}

fn label<'a>(s: &'a ContainerSummary, key: &str) -> &'a str {
    s.labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map(String::as_str)
        .unwrap_or("")
}

fn name_of(s: &ContainerSummary) -> String {
    s.names
        .as_ref()
        .and_then(|n| n.first())
        .map(|n| n.trim_start_matches('/').to_string())
        .unwrap_or_else(|| s.id.clone().unwrap_or_default())
}

fn is_running(s: &ContainerSummary) -> bool {
    matches!(s.state, Some(bollard::models::ContainerSummaryStateEnum::RUNNING))
}

/// The project's containers (one-off ones only with `oneoff`), of `services` if any are
/// named, ordered by service and number.
async fn containers(
    c: &Client,
    p: &Project,
    services: &[String],
    all: bool,
    oneoff: bool,
) -> anyhow::Result<Vec<ContainerSummary>> {
    let mut filters = HashMap::new();
    filters.insert("label".to_string(), vec![format!("{PROJECT}={}", p.name)]);
    let opts = qp::ListContainersOptions {
        all,
        filters: Some(filters),
        ..Default::default()
    };
    let mut rows: Vec<ContainerSummary> = c
        .docker
        .list_containers(Some(opts))
        .await
        .map_err(api_error)?
        .into_iter()
        .filter(|s| oneoff || label(s, ONEOFF) != "True")
        .filter(|s| services.is_empty() || services.iter().any(|n| n == label(s, SERVICE)))
        .collect();
    rows.sort_by_key(|s| {
        (
            label(s, SERVICE).to_string(),
            label(s, NUMBER).parse::<u64>().unwrap_or(0),
        )
    });
    Ok(rows)
}

pub async fn dispatch(c: &Client, p: &Project, command: ComposeCommand) -> anyhow::Result<u8> {
    match command {
        ComposeCommand::Up {
            detach,
            build,
            force_recreate,
            remove_orphans,
            scale,
            wait,
            services,
        } => {
            let plans = up(c, p, &services, build, force_recreate, remove_orphans, &scale).await?;
            if wait {
                return wait_ready(c, p, &plans).await;
            }
            if detach {
                return Ok(0);
            }
            let names: Vec<String> = plans.iter().map(|pl| pl.service.clone()).collect();
            follow_until_exit(c, p, &names).await
        }
        ComposeCommand::Down {
            volumes,
            remove_orphans: _,
            timeout,
        } => down(c, p, volumes, timeout).await,
        ComposeCommand::Ps {
            all,
            quiet,
            services,
            names,
        } => ps(c, p, all, quiet, services, &names).await,
        ComposeCommand::Logs {
            follow,
            timestamps,
            tail,
            no_color,
            services,
        } => logs(c, p, &services, follow, timestamps, tail, no_color).await,
        ComposeCommand::Build { services } => {
            for plan in plans(p, &services)? {
                if let Some(b) = &plan.build {
                    build(c, &plan, b).await?;
                }
            }
            Ok(0)
        }
        ComposeCommand::Pull { services } => {
            for plan in plans(p, &services)? {
                // A service that is only built is pulled only when its pull_policy allows.
                if plan.build.is_none() || plan.pull_policy != "build" {
                    if plan.build.is_some() && image_exists(c, &plan.image).await {
                        continue;
                    }
                    pull(c, &plan.image).await?;
                }
            }
            Ok(0)
        }
        ComposeCommand::Push { services } => {
            for plan in plans(p, &services)? {
                if plan.build.is_some() {
                    crate::commands::image::push(
                        c,
                        crate::cli::PushArgs {
                            quiet: false,
                            image: plan.image.clone(),
                        },
                    )
                    .await?;
                }
            }
            Ok(0)
        }
        ComposeCommand::Config { .. } => unreachable!("config needs no engine"),
        ComposeCommand::Start { services } => {
            for plan in order(&plans(p, &services)?)? {
                for dep in &plan.depends_on {
                    wait_for(c, p, dep).await?;
                }
                for s in containers(c, p, std::slice::from_ref(&plan.service), true, false).await? {
                    if !is_running(&s) {
                        start(c, &s).await?;
                    }
                }
            }
            Ok(0)
        }
        ComposeCommand::Stop { timeout, services } => {
            stop_all(c, &containers(c, p, &services, false, false).await?, timeout).await?;
            Ok(0)
        }
        ComposeCommand::Restart { timeout, services } => {
            for s in containers(c, p, &services, true, false).await? {
                let name = name_of(&s);
                say("Container", &name, "Restarting");
                let opts = qp::RestartContainerOptions {
                    t: timeout.map(|t| t as i32),
                    ..Default::default()
                };
                c.docker
                    .restart_container(s.id.as_deref().unwrap_or(&name), Some(opts))
                    .await
                    .map_err(api_error)?;
                say("Container", &name, "Started");
            }
            Ok(0)
        }
        ComposeCommand::Rm {
            stop: also_stop,
            force: _,
            volumes,
            services,
        } => {
            for s in containers(c, p, &services, true, false).await? {
                if is_running(&s) {
                    if !also_stop {
                        continue;
                    }
                    stop(c, &s, None).await?;
                }
                remove(c, &s, volumes).await?;
            }
            Ok(0)
        }
        ComposeCommand::Exec {
            detach,
            no_tty,
            user,
            workdir,
            env,
            index,
            service,
            command,
        } => {
            let found = containers(c, p, std::slice::from_ref(&service), false, false).await?;
            let Some(target) = found.iter().find(|s| label(s, NUMBER) == index.to_string()) else {
                if !p.service_names().contains(&service) {
                    bail!(
                        "no such service: {service} — the project's services are {}",
                        p.service_names().join(", ")
                    );
                }
                bail!("service {service} is not running (container number {index}) — start it with berth compose up -d");
            };
            let tty = !no_tty && std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
            crate::commands::container::exec(
                c,
                crate::cli::ExecArgs {
                    interactive: !detach,
                    tty,
                    detach,
                    env,
                    user,
                    workdir,
                    container: target.id.clone().unwrap_or_else(|| name_of(target)),
                    command,
                },
            )
            .await
        }
        ComposeCommand::Run {
            detach,
            rm,
            env,
            no_tty,
            service,
            command,
        } => run_one_off(c, p, &service, command, env, detach, rm, no_tty).await,
    }
}

fn plans(p: &Project, named: &[String]) -> anyhow::Result<Vec<Plan>> {
    p.services(named)?
        .into_iter()
        .map(|(name, s)| convert::plan(p, &name, s))
        .collect()
}

/// Services ordered so that each comes after what it depends on; a cycle is refused.
fn order(plans: &[Plan]) -> anyhow::Result<Vec<&Plan>> {
    let by_name: HashMap<&str, &Plan> = plans.iter().map(|p| (p.service.as_str(), p)).collect();
    let mut done: Vec<&Plan> = Vec::new();
    let mut placed = HashSet::new();
    fn visit<'a>(
        name: &str,
        by_name: &HashMap<&str, &'a Plan>,
        placed: &mut HashSet<String>,
        path: &mut Vec<String>,
        done: &mut Vec<&'a Plan>,
    ) -> anyhow::Result<()> {
        if placed.contains(name) {
            return Ok(());
        }
        if path.iter().any(|p| p == name) {
            path.push(name.to_string());
            bail!(
                "the services depend on each other in a circle: {} — remove one depends_on",
                path.join(" → ")
            );
        }
        let Some(plan) = by_name.get(name) else {
            return Ok(());
        };
        path.push(name.to_string());
        for (dep, _) in &plan.depends_on {
            visit(dep, by_name, placed, path, done)?;
        }
        path.pop();
        placed.insert(name.to_string());
        done.push(plan);
        Ok(())
    }
    for plan in plans {
        visit(&plan.service, &by_name, &mut placed, &mut Vec::new(), &mut done)?;
    }
    Ok(done)
}

async fn image_exists(c: &Client, image: &str) -> bool {
    c.docker.inspect_image(image).await.is_ok()
}

async fn pull(c: &Client, image: &str) -> anyhow::Result<()> {
    let reference = berth_reference::ImageRef::parse(image)
        .map_err(|e| anyhow::anyhow!("{image} is not an image reference: {e}"))?;
    say("Image", image, "Pulling");
    crate::commands::image::pull_image(c, &reference, None, &mut crate::progress::Progress::stderr()).await?;
    say("Image", image, "Pulled");
    Ok(())
}

async fn build(c: &Client, plan: &Plan, b: &convert::Build) -> anyhow::Result<()> {
    say("Service", &plan.service, "Building");
    let code = crate::commands::build::build(
        c,
        crate::cli::BuildArgs {
            tags: vec![plan.image.clone()],
            file: b.dockerfile.as_ref().map(|f| b.context.join(f)),
            target: b.target.clone(),
            no_cache: false,
            pull: false,
            build_args: b.args.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            labels: Vec::new(),
            quiet: false,
            network: "default".into(),
            path: b.context.clone(),
        },
    )
    .await?;
    if code != 0 {
        bail!(
            "service {} failed to build — the lines above say which step failed",
            plan.service
        );
    }
    say("Service", &plan.service, "Built");
    Ok(())
}

/// A network's or volume's labels: the file's, and Compose's (`kind` names the key).
fn resource_labels(p: &Project, def: &Value, kind: &str, key: &str) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> = HashMap::new();
    if let Some(Value::Object(l)) = def.get("labels") {
        for (k, v) in l {
            labels.insert(k.clone(), v.as_str().unwrap_or_default().to_string());
        }
    }
    labels.insert(PROJECT.into(), p.name.clone());
    labels.insert(kind.into(), key.to_string());
    labels.insert(convert::VERSION.into(), convert::COMPOSE_VERSION.into());
    labels
}

/// The networks and volumes of the file that the services use, made when missing (with
/// Compose's labels); external ones must exist.
async fn resources(c: &Client, p: &Project, plans: &[Plan]) -> anyhow::Result<()> {
    let top = serde_json::to_value(&p.compose)?;
    let mut wanted: Vec<String> = Vec::new();
    for plan in plans {
        let first = plan
            .body
            .networking_config
            .as_ref()
            .and_then(|n| n.endpoints_config.as_ref())
            .into_iter()
            .flat_map(|e| e.keys().cloned());
        for n in first.chain(plan.more_networks.iter().map(|(n, _)| n.clone())) {
            if !wanted.contains(&n) {
                wanted.push(n);
            }
        }
    }
    let declared = top
        .get("networks")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut keys: Vec<String> = declared.keys().cloned().collect();
    if !keys.iter().any(|k| k == "default") {
        keys.push("default".into());
    }
    for key in keys {
        let full = convert::resource_name(p, &top, "networks", &key);
        if !wanted.contains(&full) {
            continue;
        }
        let def = declared.get(&key).cloned().unwrap_or(Value::Null);
        let external = def.get("external").and_then(Value::as_bool) == Some(true);
        if c.docker
            .inspect_network(&full, None::<qp::InspectNetworkOptions>)
            .await
            .is_ok()
        {
            continue;
        }
        if external {
            bail!("network {full} is declared external but does not exist — create it with berth network create {full}");
        }
        let labels = resource_labels(p, &def, convert::NETWORK, &key);
        let ipam = def
            .get("ipam")
            .and_then(|i| i.get("config"))
            .and_then(Value::as_array)
            .map(|configs| bollard::models::Ipam {
                config: Some(
                    configs
                        .iter()
                        .map(|cfg| bollard::models::IpamConfig {
                            subnet: cfg.get("subnet").and_then(Value::as_str).map(str::to_string),
                            gateway: cfg.get("gateway").and_then(Value::as_str).map(str::to_string),
                            ip_range: cfg.get("ip_range").and_then(Value::as_str).map(str::to_string),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            });
        c.docker
            .create_network(bollard::models::NetworkCreateRequest {
                name: full.clone(),
                driver: def.get("driver").and_then(Value::as_str).map(str::to_string),
                internal: def.get("internal").and_then(Value::as_bool),
                attachable: def.get("attachable").and_then(Value::as_bool),
                enable_ipv6: def.get("enable_ipv6").and_then(Value::as_bool),
                labels: Some(labels),
                ipam,
                ..Default::default()
            })
            .await
            .map_err(|e| anyhow::anyhow!("network {full}: {}", api_error(e)))?;
        say("Network", &full, "Created");
    }
    let volumes = top
        .get("volumes")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (key, def) in volumes {
        let full = convert::resource_name(p, &top, "volumes", &key);
        if !plans.iter().any(|pl| pl.volumes.contains(&full)) {
            continue;
        }
        if c.docker.inspect_volume(&full).await.is_ok() {
            continue;
        }
        if def.get("external").and_then(Value::as_bool) == Some(true) {
            bail!("volume {full} is declared external but does not exist — create it with berth volume create {full}");
        }
        let labels = resource_labels(p, &def, convert::VOLUME, &key);
        c.docker
            .create_volume(bollard::models::VolumeCreateRequest {
                name: Some(full.clone()),
                driver: def.get("driver").and_then(Value::as_str).map(str::to_string),
                labels: Some(labels),
                ..Default::default()
            })
            .await
            .map_err(api_error)?;
        say("Volume", &full, "Created");
    }
    Ok(())
}

async fn up(
    c: &Client,
    p: &Project,
    services: &[String],
    force_build: bool,
    force_recreate: bool,
    remove_orphans: bool,
    scale: &[String],
) -> anyhow::Result<Vec<Plan>> {
    let mut plans = plans(p, services)?;
    for s in scale {
        let (name, n) = s
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--scale {s}: write SERVICE=NUMBER"))?;
        let n: u64 = n
            .parse()
            .map_err(|_| anyhow::anyhow!("--scale {s}: {n:?} is not a number"))?;
        let Some(plan) = plans.iter_mut().find(|pl| pl.service == name) else {
            bail!("--scale {s}: no such service: {name}");
        };
        if plan.container_name.is_some() && n > 1 {
            bail!("--scale {s}: service {name} has a container_name and cannot be scaled");
        }
        plan.replicas = n;
    }
    let ordered: Vec<Plan> = order(&plans)?.into_iter().cloned().collect();
    resources(c, p, &ordered).await?;
    for plan in &ordered {
        match &plan.build {
            Some(b) if force_build || plan.pull_policy == "build" || !image_exists(c, &plan.image).await => {
                build(c, plan, b).await?
            }
            Some(_) => {}
            None if plan.pull_policy == "always" || !image_exists(c, &plan.image).await => {
                pull(c, &plan.image).await?
            }
            None => {}
        }
    }
    for plan in &ordered {
        for dep in &plan.depends_on {
            if ordered.iter().any(|o| o.service == dep.0) {
                wait_for(c, p, dep).await?;
            }
        }
        converge(c, p, plan, force_recreate).await?;
    }
    if remove_orphans {
        let known = p.service_names();
        for s in containers(c, p, &[], true, false).await? {
            if !known.iter().any(|k| k == label(&s, SERVICE)) {
                if is_running(&s) {
                    stop(c, &s, None).await?;
                }
                remove(c, &s, false).await?;
            }
        }
    }
    Ok(ordered)
}

/// The service's containers made to match the file: created where missing, recreated
/// where the file changed (or `force`), started where stopped; extra ones removed.
async fn converge(c: &Client, p: &Project, plan: &Plan, force: bool) -> anyhow::Result<()> {
    let existing = containers(c, p, std::slice::from_ref(&plan.service), true, false).await?;
    // A rebuilt or newly pulled image recreates the containers of the old one too.
    let image_id = c.docker.inspect_image(&plan.image).await.ok().and_then(|i| i.id);
    for n in 1..=plan.replicas {
        let name = match &plan.container_name {
            Some(n) => n.clone(),
            None => format!("{}-{}-{n}", p.name, plan.service),
        };
        let mine = existing.iter().find(|s| label(s, NUMBER) == n.to_string());
        match mine {
            Some(s)
                if !force
                    && label(s, CONFIG_HASH) == plan.hash
                    && (image_id.is_none() || s.image_id == image_id) =>
            {
                if is_running(s) {
                    say("Container", &name_of(s), "Running");
                } else {
                    start(c, s).await?;
                }
                continue;
            }
            Some(s) => {
                say("Container", &name_of(s), "Recreate");
                if is_running(s) {
                    stop(c, s, None).await?;
                }
                c.docker
                    .remove_container(
                        s.id.as_deref().unwrap_or_default(),
                        Some(qp::RemoveContainerOptions {
                            force: true,
                            ..Default::default()
                        }),
                    )
                    .await
                    .map_err(api_error)?;
                create_and_start(c, plan, &name, n, "Recreated").await?;
            }
            None => create_and_start(c, plan, &name, n, "Created").await?,
        }
    }
    for s in existing
        .iter()
        .filter(|s| label(s, NUMBER).parse::<u64>().unwrap_or(0) > plan.replicas)
    {
        if is_running(s) {
            stop(c, s, None).await?;
        }
        remove(c, s, false).await?;
    }
    Ok(())
}

async fn create_and_start(c: &Client, plan: &Plan, name: &str, n: u64, done: &str) -> anyhow::Result<()> {
    let mut body = plan.body.clone();
    if let Some(l) = body.labels.as_mut() {
        l.insert(NUMBER.into(), n.to_string());
    }
    let id = c
        .docker
        .create_container(
            Some(qp::CreateContainerOptions {
                name: Some(name.to_string()),
                ..Default::default()
            }),
            body,
        )
        .await
        .map_err(|e| anyhow::anyhow!("container {name}: {}", api_error(e)))?
        .id;
    say("Container", name, done);
    for (net, endpoint) in &plan.more_networks {
        c.docker
            .connect_network(
                net,
                bollard::models::NetworkConnectRequest {
                    container: id.clone(),
                    endpoint_config: Some(endpoint.clone()),
                },
            )
            .await
            .map_err(api_error)?;
    }
    c.docker
        .start_container(&id, None::<qp::StartContainerOptions>)
        .await
        .map_err(|e| anyhow::anyhow!("container {name}: {}", api_error(e)))?;
    say("Container", name, "Started");
    Ok(())
}

async fn start(c: &Client, s: &ContainerSummary) -> anyhow::Result<()> {
    let name = name_of(s);
    c.docker
        .start_container(
            s.id.as_deref().unwrap_or(&name),
            None::<qp::StartContainerOptions>,
        )
        .await
        .map_err(api_error)?;
    say("Container", &name, "Started");
    Ok(())
}

async fn stop(c: &Client, s: &ContainerSummary, timeout: Option<u64>) -> anyhow::Result<()> {
    let name = name_of(s);
    say("Container", &name, "Stopping");
    let opts = qp::StopContainerOptions {
        t: timeout.map(|t| t as i32),
        ..Default::default()
    };
    c.docker
        .stop_container(s.id.as_deref().unwrap_or(&name), Some(opts))
        .await
        .map_err(api_error)?;
    say("Container", &name, "Stopped");
    Ok(())
}

async fn remove(c: &Client, s: &ContainerSummary, volumes: bool) -> anyhow::Result<()> {
    let name = name_of(s);
    c.docker
        .remove_container(
            s.id.as_deref().unwrap_or(&name),
            Some(qp::RemoveContainerOptions {
                force: true,
                v: volumes,
                ..Default::default()
            }),
        )
        .await
        .map_err(api_error)?;
    say("Container", &name, "Removed");
    Ok(())
}

/// Waits until `dep`'s condition holds: started, healthy, or exited with 0.
async fn wait_for(c: &Client, p: &Project, (dep, cond): &(String, Condition)) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut said = false;
    loop {
        let found = containers(c, p, std::slice::from_ref(dep), true, false).await?;
        if found.is_empty() {
            bail!("service {dep} has no container to depend on — start it first (berth compose up {dep})");
        }
        let mut ready = true;
        for s in &found {
            let name = name_of(s);
            let state = c
                .docker
                .inspect_container(&name, None::<qp::InspectContainerOptions>)
                .await
                .map_err(api_error)?
                .state
                .unwrap_or_default();
            let ok = match cond {
                Condition::Started => {
                    state.running == Some(true)
                        || state.status.as_ref().is_some_and(|s| s.to_string() == "exited")
                }
                Condition::Healthy => {
                    let health = state
                        .health
                        .as_ref()
                        .and_then(|h| h.status)
                        .map(|s| s.to_string())
                        .unwrap_or_default();
                    if health.is_empty() || health == "none" {
                        bail!("dependency {dep} has no healthcheck, so it cannot become healthy — give it a healthcheck: or use condition: service_started");
                    }
                    if health == "unhealthy" {
                        bail!("dependency failed to start: container {name} is unhealthy — read its logs with berth compose logs {dep}");
                    }
                    if state.running != Some(true) {
                        bail!("dependency failed to start: container {name} exited — read its logs with berth compose logs {dep}");
                    }
                    health == "healthy"
                }
                Condition::CompletedSuccessfully => {
                    if state.running == Some(true) {
                        false
                    } else {
                        let code = state.exit_code.unwrap_or(0);
                        if code != 0 {
                            bail!("service {dep} didn't complete successfully: exit {code} — read its logs with berth compose logs {dep}");
                        }
                        true
                    }
                }
            };
            ready &= ok;
        }
        if ready {
            if *cond == Condition::Healthy {
                for s in &found {
                    say("Container", &name_of(s), "Healthy");
                }
            }
            return Ok(());
        }
        if !said && *cond != Condition::Started {
            for s in &found {
                say("Container", &name_of(s), "Waiting");
            }
            said = true;
        }
        if Instant::now() > deadline {
            bail!("service {dep} was not ready after 300 s — read its logs with berth compose logs {dep}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `up --wait`: every container running, and healthy where it has a healthcheck.
async fn wait_ready(c: &Client, p: &Project, plans: &[Plan]) -> anyhow::Result<u8> {
    for plan in plans {
        let has_health = plan
            .body
            .healthcheck
            .as_ref()
            .is_some_and(|h| h.test.as_deref() != Some(&["NONE".to_string()]));
        let cond = if has_health {
            Condition::Healthy
        } else {
            Condition::Started
        };
        wait_for(c, p, &(plan.service.clone(), cond)).await?;
    }
    Ok(0)
}

/// Stops containers all at once, as Compose does (each may take its whole timeout).
async fn stop_all(c: &Client, rows: &[ContainerSummary], timeout: Option<u64>) -> anyhow::Result<()> {
    let running: Vec<&ContainerSummary> = rows.iter().filter(|s| is_running(s)).collect();
    for r in futures_util::future::join_all(running.into_iter().map(|s| stop(c, s, timeout))).await {
        r?;
    }
    Ok(())
}

async fn down(c: &Client, p: &Project, volumes: bool, timeout: Option<u64>) -> anyhow::Result<u8> {
    let rows = containers(c, p, &[], true, true).await?;
    stop_all(c, &rows, timeout).await?;
    for s in &rows {
        remove(c, s, volumes).await?;
    }
    let mut filters = HashMap::new();
    filters.insert("label".to_string(), vec![format!("{PROJECT}={}", p.name)]);
    let nets = c
        .docker
        .list_networks(Some(qp::ListNetworksOptions {
            filters: Some(filters.clone()),
        }))
        .await
        .map_err(api_error)?;
    for n in nets {
        let name = n.name.unwrap_or_default();
        c.docker.remove_network(&name).await.map_err(api_error)?;
        say("Network", &name, "Removed");
    }
    if volumes {
        let vols = c
            .docker
            .list_volumes(Some(qp::ListVolumesOptions {
                filters: Some(filters),
            }))
            .await
            .map_err(api_error)?;
        for v in vols.volumes.unwrap_or_default() {
            c.docker
                .remove_volume(&v.name, None::<qp::RemoveVolumeOptions>)
                .await
                .map_err(api_error)?;
            say("Volume", &v.name, "Removed");
        }
    }
    Ok(0)
}

async fn ps(
    c: &Client,
    p: &Project,
    all: bool,
    quiet: bool,
    services: bool,
    names: &[String],
) -> anyhow::Result<u8> {
    let rows = containers(c, p, names, all, false).await?;
    if quiet {
        for r in &rows {
            println!("{}", r.id.clone().unwrap_or_default());
        }
        return Ok(0);
    }
    if services {
        let mut seen = Vec::new();
        for r in &rows {
            let s = label(r, SERVICE).to_string();
            if !seen.contains(&s) {
                println!("{s}");
                seen.push(s);
            }
        }
        return Ok(0);
    }
    let mut table = vec![["NAME", "IMAGE", "COMMAND", "SERVICE", "STATUS", "PORTS"]
        .map(String::from)
        .to_vec()];
    for r in &rows {
        let ports = r
            .ports
            .iter()
            .flatten()
            .filter_map(|pt| {
                let proto = pt.typ.map(|t| t.to_string()).unwrap_or_else(|| "tcp".into());
                pt.public_port.map(|pub_| {
                    format!(
                        "{}:{pub_}->{}/{proto}",
                        pt.ip.clone().unwrap_or_else(|| "0.0.0.0".into()),
                        pt.private_port
                    )
                })
            })
            .collect::<Vec<_>>()
            .join(", ");
        let command = r.command.clone().unwrap_or_default();
        let command = if command.chars().count() > 20 {
            format!("\"{}…\"", command.chars().take(19).collect::<String>())
        } else {
            format!("\"{command}\"")
        };
        table.push(vec![
            name_of(r),
            r.image.clone().unwrap_or_default(),
            command,
            label(r, SERVICE).to_string(),
            r.status.clone().unwrap_or_default(),
            ports,
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| table.iter().map(|row| row[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = std::io::stdout().lock();
    for row in table {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        writeln!(out, "{}", line.join("   ").trim_end())?;
    }
    Ok(0)
}

const COLORS: [&str; 6] = ["36", "33", "32", "35", "34", "31"];

/// Every container's output, each line after `NAME  | `, interleaved as it comes.
async fn logs(
    c: &Client,
    p: &Project,
    services: &[String],
    follow: bool,
    timestamps: bool,
    tail: Option<String>,
    no_color: bool,
) -> anyhow::Result<u8> {
    let rows = containers(c, p, services, true, false).await?;
    stream_logs(c, p, &rows, follow, timestamps, tail, no_color).await?;
    Ok(0)
}

async fn stream_logs(
    c: &Client,
    p: &Project,
    rows: &[ContainerSummary],
    follow: bool,
    timestamps: bool,
    tail: Option<String>,
    no_color: bool,
) -> anyhow::Result<()> {
    let color = !no_color && std::io::stdout().is_terminal();
    let order = p.service_names();
    let width = rows.iter().map(|r| name_of(r).chars().count()).max().unwrap_or(0);
    let mut streams = Vec::new();
    for r in rows {
        let name = name_of(r);
        let service = label(r, SERVICE).to_string();
        let n = order.iter().position(|s| *s == service).unwrap_or(0);
        let prefix = if color {
            format!("\x1b[{}m{name:<width$}  |\x1b[0m ", COLORS[n % COLORS.len()])
        } else {
            format!("{name:<width$}  | ")
        };
        let opts = qp::LogsOptions {
            follow,
            stdout: true,
            stderr: true,
            timestamps,
            tail: tail.clone().unwrap_or_else(|| "all".into()),
            ..Default::default()
        };
        let s = c
            .docker
            .logs(r.id.as_deref().unwrap_or(&name), Some(opts))
            .map(move |item| (prefix.clone(), item));
        streams.push(Box::pin(s));
    }
    let mut all = futures_util::stream::select_all(streams);
    let mut partial: HashMap<String, String> = HashMap::new();
    while let Some((prefix, item)) = all.next().await {
        let Ok(out) = item else { continue };
        let text = String::from_utf8_lossy(&out.into_bytes()).into_owned();
        let buf = partial.entry(prefix.clone()).or_default();
        buf.push_str(&text);
        let mut stdout = std::io::stdout().lock();
        while let Some(i) = buf.find('\n') {
            let line: String = buf.drain(..=i).collect();
            let _ = write!(stdout, "{prefix}{line}");
        }
        let _ = stdout.flush();
    }
    for (prefix, rest) in partial {
        if !rest.is_empty() {
            println!("{prefix}{rest}");
        }
    }
    Ok(())
}

/// `up` without `-d`: the services' output until every container has exited; Ctrl-C
/// stops them (as Compose does: "Gracefully stopping...").
async fn follow_until_exit(c: &Client, p: &Project, services: &[String]) -> anyhow::Result<u8> {
    let rows = containers(c, p, services, true, false).await?;
    eprintln!(
        "Attaching to {}",
        rows.iter().map(name_of).collect::<Vec<_>>().join(", ")
    );
    let follow = stream_logs(c, p, &rows, true, false, Some("all".into()), false);
    tokio::select! {
        r = follow => r?,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("Gracefully stopping... (press Ctrl+C again to force)");
            for s in containers(c, p, services, false, false).await? {
                stop(c, &s, None).await?;
            }
        }
    }
    Ok(0)
}

#[allow(clippy::too_many_arguments)]
async fn run_one_off(
    c: &Client,
    p: &Project,
    service: &str,
    command: Vec<String>,
    env: Vec<String>,
    detach: bool,
    rm: bool,
    no_tty: bool,
) -> anyhow::Result<u8> {
    let all = plans(p, &[service.to_string()])?;
    let ordered: Vec<Plan> = order(&all)?.into_iter().cloned().collect();
    resources(c, p, &ordered).await?;
    // Its dependencies run as they would with `up -d`.
    for plan in ordered.iter().filter(|pl| pl.service != service) {
        if plan.build.is_none() && !image_exists(c, &plan.image).await {
            pull(c, &plan.image).await?;
        }
        converge(c, p, plan, false).await?;
    }
    let plan = ordered
        .iter()
        .find(|pl| pl.service == service)
        .context("the service itself")?;
    for dep in &plan.depends_on {
        wait_for(c, p, dep).await?;
    }
    match &plan.build {
        Some(b) if !image_exists(c, &plan.image).await => build(c, plan, b).await?,
        None if !image_exists(c, &plan.image).await => pull(c, &plan.image).await?,
        _ => {}
    }
    let mut body = plan.body.clone();
    if !command.is_empty() {
        body.cmd = Some(command);
    }
    let tty = !no_tty && !detach && std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    body.tty = Some(tty);
    body.open_stdin = Some(!detach);
    body.attach_stdin = Some(!detach);
    body.attach_stdout = Some(!detach);
    body.attach_stderr = Some(!detach);
    let extra: Vec<String> = env;
    if let Some(e) = body.env.as_mut() {
        e.extend(extra);
    }
    if let Some(h) = body.host_config.as_mut() {
        // One-off runs publish no ports, as Compose's do without --service-ports.
        h.port_bindings = None;
        h.auto_remove = Some(rm && detach);
        h.restart_policy = None;
    }
    if let Some(l) = body.labels.as_mut() {
        l.insert(ONEOFF.into(), "True".into());
        l.insert(NUMBER.into(), "1".into());
    }
    let suffix: String = {
        use sha2::Digest;
        let seed = format!("{:?}{}", Instant::now(), std::process::id());
        format!("{:x}", sha2::Sha256::digest(seed.as_bytes()))[..6].to_string()
    };
    let name = format!("{}-{service}-run-{suffix}", p.name);
    let id = c
        .docker
        .create_container(
            Some(qp::CreateContainerOptions {
                name: Some(name.clone()),
                ..Default::default()
            }),
            body,
        )
        .await
        .map_err(api_error)?
        .id;
    if detach {
        c.docker
            .start_container(&id, None::<qp::StartContainerOptions>)
            .await
            .map_err(api_error)?;
        println!("{name}");
        return Ok(0);
    }
    let code = crate::commands::container::start(
        c,
        crate::cli::StartArgs {
            attach: true,
            interactive: true,
            detach_keys: "ctrl-p,ctrl-q".into(),
            containers: vec![id.clone()],
        },
    )
    .await?;
    if rm {
        let _ = c
            .docker
            .remove_container(
                &id,
                Some(qp::RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                }),
            )
            .await;
    }
    Ok(code)
}
