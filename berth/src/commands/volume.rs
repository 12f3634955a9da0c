//! `volume` and `network` commands, over the client.

use std::collections::HashMap;

use bollard::query_parameters as qp;

use super::each;
use crate::cli::{NetworkCommand, VolumeCommand};
use crate::client::{self, api_error, Client};
use crate::render;

pub async fn volume(c: &Client, cmd: VolumeCommand) -> anyhow::Result<u8> {
    match cmd {
        VolumeCommand::Create { label, name } => {
            let v = c
                .docker
                .create_volume(bollard::models::VolumeCreateRequest {
                    name,
                    labels: Some(super::create_body::key_values(&label)),
                    ..Default::default()
                })
                .await
                .map_err(api_error)?;
            println!("{}", v.name);
        }
        VolumeCommand::Ls { quiet, format } => {
            let vols = c
                .docker
                .list_volumes(None::<qp::ListVolumesOptions>)
                .await
                .map_err(api_error)?;
            crate::lists::volumes(&mut vols.volumes.unwrap_or_default(), quiet, format.as_deref())?;
        }
        VolumeCommand::Inspect { names } => return inspect_each(c, &names, "/volumes").await,
        VolumeCommand::Rm { force, names } => {
            return each(&names, |n| async move {
                c.docker
                    .remove_volume(&n, Some(qp::RemoveVolumeOptions { force }))
                    .await
                    .map_err(api_error)
            })
            .await
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
            let freed = prune_volumes(c, all).await?;
            println!("Total reclaimed space: {}", render::size(freed));
        }
    }
    Ok(0)
}

/// `GET {base}/{name}` for each name, printed as docker's JSON array.
async fn inspect_each(c: &Client, names: &[String], base: &str) -> anyhow::Result<u8> {
    let mut values = Vec::new();
    let mut code = 0;
    for n in names {
        match c.get_json(&format!("{base}/{}", client::q(n))).await {
            Ok(v) => values.push(v),
            Err(e) => {
                eprintln!("Error: {e}");
                code = 1;
            }
        }
    }
    crate::lists::inspect(&values, None)?;
    Ok(code)
}

/// `POST /volumes/prune` (anonymous volumes only unless `all`), printing docker's
/// "Deleted Volumes:" list; the bytes freed.
pub(crate) async fn prune_volumes(c: &Client, all: bool) -> anyhow::Result<u64> {
    let filters = all.then(|| HashMap::from([("all".to_string(), vec!["true".to_string()])]));
    let report = c
        .docker
        .prune_volumes(Some(qp::PruneVolumesOptions { filters }))
        .await
        .map_err(api_error)?;
    let deleted = report.volumes_deleted.unwrap_or_default();
    super::print_deleted("Volumes", &deleted);
    Ok(report.space_reclaimed.unwrap_or(0).max(0) as u64)
}

/// `POST /networks/prune`, printing docker's "Deleted Networks:" list.
pub(crate) async fn prune_networks(c: &Client) -> anyhow::Result<()> {
    let report = c
        .docker
        .prune_networks(None::<qp::PruneNetworksOptions>)
        .await
        .map_err(api_error)?;
    let deleted = report.networks_deleted.unwrap_or_default();
    super::print_deleted("Networks", &deleted);
    Ok(())
}

/// `network create`'s IPAM configs, docker's way: each `--subnet` with the `--gateway` of
/// its family (IPv4 or IPv6), `--ip-range` with the IPv4 one.
fn ipam_configs(
    subnets: Vec<String>,
    gateways: Vec<String>,
    ip_range: Option<String>,
) -> anyhow::Result<Option<Vec<bollard::models::IpamConfig>>> {
    let v6 = |s: &String| s.contains(':');
    let mut configs = Vec::new();
    for family in [false, true] {
        let subnet: Vec<&String> = subnets.iter().filter(|s| v6(s) == family).collect();
        let gateway: Vec<&String> = gateways.iter().filter(|s| v6(s) == family).collect();
        let range = ip_range.clone().filter(|_| !family);
        if subnet.len() > 1 || gateway.len() > 1 {
            anyhow::bail!("give at most one IPv4 and one IPv6 --subnet (and --gateway) per network");
        }
        if subnet.is_empty() && (!gateway.is_empty() || range.is_some()) {
            anyhow::bail!("a --gateway or --ip-range needs a --subnet of the same family");
        }
        if let Some(s) = subnet.first() {
            configs.push(bollard::models::IpamConfig {
                subnet: Some(s.to_string()),
                gateway: gateway.first().map(|g| g.to_string()),
                ip_range: range,
                ..Default::default()
            });
        }
    }
    Ok((!configs.is_empty()).then_some(configs))
}

pub async fn network(c: &Client, cmd: NetworkCommand) -> anyhow::Result<u8> {
    match cmd {
        NetworkCommand::Create {
            subnet,
            gateway,
            ip_range,
            ipv6,
            internal,
            attachable,
            label,
            opt,
            name,
        } => {
            let ipam = ipam_configs(subnet, gateway, ip_range)?.map(|config| bollard::models::Ipam {
                config: Some(config),
                ..Default::default()
            });
            c.docker
                .create_network(bollard::models::NetworkCreateRequest {
                    name: name.clone(),
                    ipam,
                    internal: Some(internal),
                    attachable: Some(attachable),
                    enable_ipv6: Some(ipv6),
                    labels: Some(super::create_body::key_values(&label)),
                    options: Some(super::create_body::key_values(&opt)),
                    ..Default::default()
                })
                .await
                .map_err(api_error)?;
            println!("{name}");
        }
        NetworkCommand::Ls {
            quiet,
            no_trunc,
            format,
        } => {
            let mut rows = c
                .docker
                .list_networks(None::<qp::ListNetworksOptions>)
                .await
                .map_err(api_error)?;
            crate::lists::networks(&mut rows, quiet, no_trunc, format.as_deref())?;
        }
        NetworkCommand::Inspect { names } => return inspect_each(c, &names, "/networks").await,
        NetworkCommand::Rm { names } => {
            return each(&names, |n| async move {
                c.docker.remove_network(&n).await.map_err(api_error)
            })
            .await
        }
        NetworkCommand::Connect {
            aliases,
            network,
            container,
        } => {
            let req = bollard::models::NetworkConnectRequest {
                container,
                endpoint_config: Some(bollard::models::EndpointSettings {
                    aliases: (!aliases.is_empty()).then_some(aliases),
                    ..Default::default()
                }),
            };
            c.docker.connect_network(&network, req).await.map_err(api_error)?;
        }
        NetworkCommand::Disconnect {
            force,
            network,
            container,
        } => {
            let req = bollard::models::NetworkDisconnectRequest {
                container,
                force: Some(force),
            };
            c.docker
                .disconnect_network(&network, req)
                .await
                .map_err(api_error)?;
        }
    }
    Ok(0)
}
