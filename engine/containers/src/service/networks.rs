//! `network connect` and `network disconnect` for a container: its record's list of
//! networks, and for a running container the live interface and its names.

use std::collections::BTreeMap;

use berth_events::{Action, Kind};

use super::ContainerService;
use crate::record::*;
use crate::ContainerError;

impl ContainerService {
    /// Connects a container to one more network, like `docker network connect`. A running
    /// container gets the next `ethN` at once and the names on that network learn each
    /// other; a stopped or created one joins the network at its next start.
    pub fn connect(
        &self,
        network: &str,
        name_or_id: &str,
        aliases: &[String],
        (ip, ip6): (Option<std::net::Ipv4Addr>, Option<std::net::Ipv6Addr>),
    ) -> Result<ContainerRecord, ContainerError> {
        let _lock = self.lock()?;
        let mut rec = self.find(name_or_id)?;
        let network = self.network_name(network)?;
        match (rec.host.network.as_str(), network.as_str()) {
            (_, "host") => return Err(ContainerError::HostNetwork),
            ("host", _) => return Err(ContainerError::SharedNamespace),
            ("none", _) | (_, "none") => return Err(ContainerError::PrivateNetwork),
            _ => {}
        }
        let mut attachments = rec.attachments();
        if attachments.iter().any(|a| a.name == network) {
            return Err(ContainerError::EndpointExists {
                name: rec.name,
                network,
            });
        }
        let attachment = NetworkAttachment {
            name: network.clone(),
            aliases: aliases.to_vec(),
            ip,
            ip6,
            mac: None,
        };
        if self.status(&rec).is_running() {
            let ep = self.net.connect_at(
                &rec.id,
                &network,
                &endpoint_names(&rec, &attachment),
                attachment.fixed(),
            )?;
            rec.endpoints.push(endpoint_info(&ep));
        }
        attachments.push(attachment);
        rec.networks = Some(attachments);
        if let Err(e) = self.save(&rec) {
            if self.status(&rec).is_running() {
                let _ = self.net.disconnect(&rec.id, &network);
            }
            return Err(e);
        }
        self.refresh_after_network_change(&rec, &network);
        self.emit_network(
            Action::Connect {
                container: rec.id.clone(),
            },
            &network,
        );
        Ok(rec)
    }

    /// Disconnects a container from a network, like `docker network disconnect`: a running
    /// container loses that interface and the names on that network at once.
    pub fn disconnect(&self, network: &str, name_or_id: &str) -> Result<ContainerRecord, ContainerError> {
        let _lock = self.lock()?;
        let mut rec = self.find(name_or_id)?;
        let network = self.network_name(network)?;
        if network == "host" || rec.host.network == "host" {
            return Err(ContainerError::HostNetwork);
        }
        let mut attachments = rec.attachments();
        let Some(pos) = attachments.iter().position(|a| a.name == network) else {
            return Err(ContainerError::NotConnected {
                id: rec.id.clone(),
                name: rec.name.clone(),
                network,
            });
        };
        attachments.remove(pos);
        if self.status(&rec).is_running() {
            match self.net.disconnect(&rec.id, &network) {
                Ok(_) | Err(berth_net::NetError::NotConnected { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            rec.endpoints.retain(|e| e.network != network);
        }
        rec.networks = Some(attachments);
        self.save(&rec)?;
        self.refresh_after_network_change(&rec, &network);
        self.emit_network(
            Action::Disconnect {
                container: rec.id.clone(),
            },
            &network,
        );
        Ok(rec)
    }

    /// `network create`: a user network (a bridge of its own).
    pub fn create_network(
        &self,
        name: &str,
        spec: &berth_net::NetworkSpec,
    ) -> Result<berth_net::NetworkConfig, ContainerError> {
        let n = self.net.create_network_with(name, spec)?;
        self.emit_network(Action::Create, &n.name);
        Ok(n)
    }

    /// `network rm`: a user network no container is on.
    pub fn remove_network(&self, name: &str) -> Result<(), ContainerError> {
        self.net.remove_network(name)?;
        self.emit_network(Action::Destroy, name);
        Ok(())
    }

    /// A network event with docker's attributes (the name, the driver; a connect's
    /// container travels in its `Action`).
    fn emit_network(&self, action: Action, network: &str) {
        let attrs = BTreeMap::from([
            ("name".to_string(), network.to_string()),
            ("type".to_string(), "bridge".to_string()),
        ]);
        self.events
            .emit(Kind::Network, action, &berth_net::network_id(network), attrs);
    }

    /// The network's own name for a name or ID the user gave ("bridge", "host", "none" or
    /// a user network).
    fn network_name(&self, network: &str) -> Result<String, ContainerError> {
        let all = self.net.list_networks()?;
        all.iter()
            .find(|n| n.name == network)
            .map(|n| n.name.clone())
            .ok_or_else(|| berth_net::NetError::NetworkNotFound(network.to_string()).into())
    }

    /// After a live connect or disconnect: the container's own /etc/hosts and those of its
    /// peers on `network` are rewritten.
    pub(super) fn refresh_after_network_change(&self, rec: &ContainerRecord, network: &str) {
        if !self.status(rec).is_running() {
            return;
        }
        let _ = std::fs::write(self.paths(&rec.id).etc("hosts"), self.hosts_for(rec));
        if network != berth_net::DEFAULT_NETWORK {
            self.refresh_peer_hosts(network, &rec.id);
        }
    }
}

/// The names a container answers to on a network: its name, its aliases there and its
/// short ID (docker's embedded DNS answers all three).
pub(super) fn endpoint_names(rec: &ContainerRecord, a: &NetworkAttachment) -> Vec<String> {
    let mut names = vec![rec.name.clone()];
    for n in a
        .aliases
        .iter()
        .chain(std::iter::once(&rec.id[..12.min(rec.id.len())].to_string()))
    {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    names
}

pub(super) fn endpoint_info(ep: &berth_net::Endpoint) -> EndpointInfo {
    EndpointInfo {
        network: ep.network.clone(),
        ip: ep.ip.to_string(),
        prefix: ep.prefix,
        gateway: ep.gateway.to_string(),
        mac: ep.mac.clone(),
        interface: ep.interface.clone(),
        ipv6: ep.ipv6,
    }
}
