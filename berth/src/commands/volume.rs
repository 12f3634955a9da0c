//! `volume` and `network` commands.

use anyhow::bail;
use berth_containers::ContainerService;

use crate::cli::{Global, NetworkCommand, VolumeCommand};
use crate::engine;

fn service(g: &Global) -> anyhow::Result<ContainerService> {
    Ok(ContainerService::new(engine::open(g)?, std::env::current_exe()?)?)
}

fn pretty(v: &serde_json::Value) -> anyhow::Result<String> {
    let mut buf = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut buf,
        serde_json::ser::PrettyFormatter::with_indent(b"    "),
    );
    serde::Serialize::serialize(v, &mut ser)?;
    Ok(String::from_utf8(buf)?)
}

pub fn volume(g: &Global, cmd: VolumeCommand) -> anyhow::Result<u8> {
    let svc = service(g)?;
    let vols = svc.volumes();
    match cmd {
        VolumeCommand::Create { name } => {
            let name = name.unwrap_or_else(hex_name);
            println!("{}", vols.create(&name)?.name);
        }
        VolumeCommand::Ls { quiet, format } => {
            let mut rows = vols
                .list()?
                .iter()
                .map(|v| crate::lists::model(berth_api::volume_summary(v)))
                .collect::<anyhow::Result<Vec<_>>>()?;
            crate::lists::volumes(&mut rows, quiet, format.as_deref())?;
        }
        VolumeCommand::Inspect { names } => {
            let mut out = Vec::new();
            for n in &names {
                let v = vols.get(n)?.ok_or_else(|| {
                    anyhow::anyhow!("no such volume: {n} — run `berth volume ls` to see your volumes")
                })?;
                out.push(serde_json::json!({
                    "CreatedAt": v.created,
                    "Driver": "local",
                    "Labels": v.labels,
                    "Mountpoint": v.mountpoint,
                    "Name": v.name,
                    "Options": {},
                    "Scope": "local",
                    "UsedBy": svc.users_of_volume(&v.name)?,
                }));
            }
            println!("{}", pretty(&serde_json::Value::Array(out))?);
        }
        VolumeCommand::Rm { force, names } => {
            let mut code = 0;
            for n in &names {
                let users = svc.users_of_volume(n)?;
                if !users.is_empty() && !force {
                    eprintln!(
                        "Error: volume {n} is in use by container {} — remove the container first (`berth rm {}`)",
                        users[0], users[0]
                    );
                    code = 1;
                    continue;
                }
                match vols.remove(n) {
                    Ok(()) => println!("{n}"),
                    Err(e) => {
                        eprintln!("Error: {e}");
                        code = 1;
                    }
                }
            }
            return Ok(code);
        }
        VolumeCommand::Prune { force, all } => {
            if !force {
                println!(
                    "WARNING! This will remove anonymous local volumes not used by at least one container."
                );
                if !super::confirm("Are you sure you want to continue?") {
                    return Ok(0);
                }
            }
            prune_volumes(&svc, all)?;
            println!("Total reclaimed space: 0B");
        }
    }
    Ok(0)
}

/// Removes the volumes no container uses (anonymous ones only unless `all`) and prints
/// docker's "Deleted Volumes:" list.
pub(crate) fn prune_volumes(svc: &ContainerService, all: bool) -> anyhow::Result<()> {
    let vols = svc.volumes();
    let mut deleted = Vec::new();
    for v in vols.list()? {
        let anonymous = v.name.len() == 64 && v.name.bytes().all(|b| b.is_ascii_hexdigit());
        if (all || anonymous) && svc.users_of_volume(&v.name)?.is_empty() {
            vols.remove(&v.name)?;
            deleted.push(v.name);
        }
    }
    if !deleted.is_empty() {
        println!("Deleted Volumes:");
        for d in deleted {
            println!("{d}");
        }
        println!();
    }
    Ok(())
}

fn hex_name() -> String {
    berth_oci::Digest::of(format!("{:?}{}", std::time::SystemTime::now(), std::process::id()).as_bytes())
        .hex()
        .to_string()
}

pub fn network(g: &Global, cmd: NetworkCommand) -> anyhow::Result<u8> {
    let svc = service(g)?;
    let net = svc.network();
    match cmd {
        NetworkCommand::Create { subnet, name } => {
            if matches!(name.as_str(), "bridge" | "host" | "none") {
                bail!("network name {name} is reserved — pick another name");
            }
            let n = net.create_network(&name, subnet.as_deref())?;
            println!("{}", n.name);
        }
        NetworkCommand::Ls {
            quiet,
            no_trunc,
            format,
        } => {
            // The list shows no endpoints, so none are read.
            let mut rows = net
                .list_networks()?
                .iter()
                .map(|n| crate::lists::model(berth_api::network_summary(n, &[])))
                .collect::<anyhow::Result<Vec<_>>>()?;
            crate::lists::networks(&mut rows, quiet, no_trunc, format.as_deref())?;
        }
        NetworkCommand::Inspect { names } => {
            let all = net.list_networks()?;
            let mut out = Vec::new();
            for name in &names {
                let n = all
                    .iter()
                    .find(|n| &n.name == name)
                    .ok_or_else(|| anyhow::anyhow!("network {name} not found — run `berth network ls`"))?;
                let endpoints = if matches!(name.as_str(), "host" | "none") {
                    Vec::new()
                } else {
                    net.endpoints(name)?
                };
                let containers: serde_json::Map<String, serde_json::Value> = endpoints
                    .iter()
                    .map(|e| {
                        (
                            e.container_id.clone(),
                            serde_json::json!({"Name": e.aliases.first(), "IPv4Address": format!("{}/{}", e.ip, e.prefix), "MacAddress": e.mac}),
                        )
                    })
                    .collect();
                out.push(serde_json::json!({
                    "Name": n.name,
                    "Driver": if name == "host" { "host" } else if name == "none" { "null" } else { "bridge" },
                    "Scope": "local",
                    "IPAM": {"Config": [{"Subnet": n.subnet.to_string(), "Gateway": n.gateway.to_string()}]},
                    "Options": {"com.docker.network.bridge.name": n.bridge},
                    "Containers": containers,
                }));
            }
            println!("{}", pretty(&serde_json::Value::Array(out))?);
        }
        NetworkCommand::Rm { names } => {
            let mut code = 0;
            for n in &names {
                match net.remove_network(n) {
                    Ok(()) => println!("{n}"),
                    Err(e) => {
                        eprintln!("Error: {e}");
                        code = 1;
                    }
                }
            }
            return Ok(code);
        }
        NetworkCommand::Connect {
            aliases,
            network,
            container,
        } => {
            svc.connect(&network, &container, &aliases)?;
        }
        // Force only matters to docker's swarm networks; a local disconnect always succeeds
        // or says why not.
        NetworkCommand::Disconnect {
            force: _,
            network,
            container,
        } => {
            svc.disconnect(&network, &container)?;
        }
    }
    Ok(0)
}
