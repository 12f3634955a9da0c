//! Errors of the container services: one plain sentence with a next step each.

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("no such container: {0} — run `berth ps -a` to see your containers")]
    NotFound(String),
    #[error("the container name \"{name}\" is already in use by container {id} — remove it (`berth rm {name}`) or pick another --name")]
    NameInUse { name: String, id: String },
    #[error("invalid container name '{0}': use letters, digits, '_', '.' and '-', starting with a letter or digit")]
    InvalidName(String),
    #[error("container {0} is running — stop it first (`berth stop {0}`) or use -f")]
    Running(String),
    #[error("container {0} is not running — start it with `berth start {0}`")]
    NotRunning(String),
    #[error("container {0} is paused — unpause it first (`berth unpause {0}`)")]
    Paused(String),
    #[error("container {name} is dead: {reason} — remove it with `berth rm {name}`")]
    Dead { name: String, reason: String },
    #[error("{0}")]
    InvalidArgument(String),
    /// A machine's host could not publish a port (one sentence, e.g. the port is taken).
    #[error("{0}")]
    HostPort(String),
    #[error("endpoint with name {name} already exists in network {network} — disconnect it first (`berth network disconnect {network} {name}`)")]
    EndpointExists { name: String, network: String },
    #[error(
        "container {id} is not connected to network {network} — see its networks with `berth inspect {name}`"
    )]
    NotConnected {
        id: String,
        name: String,
        network: String,
    },
    #[error("container cannot be disconnected from host network or connected to host network — use a bridge or user network instead")]
    HostNetwork,
    #[error("container sharing network namespace with another container or host cannot be connected to any other network — create it with --network bridge or a user network")]
    SharedNamespace,
    #[error("container cannot be connected to multiple networks with one of the networks in private (none) mode — create it with --network bridge or a user network")]
    PrivateNetwork,
    #[error("the image of container {name} ({image}) was removed, so its files cannot be read — create a new container")]
    ImageGone { name: String, image: String },
    #[error(transparent)]
    Image(#[from] berth_images::ImageError),
    #[error(transparent)]
    Store(#[from] berth_store::StoreError),
    #[error(transparent)]
    Runtime(#[from] berth_runtime::RuntimeError),
    #[error(transparent)]
    Cgroup(#[from] berth_cgroups::CgroupError),
    #[error(transparent)]
    Net(#[from] berth_net::NetError),
    #[error(transparent)]
    RunDir(#[from] berth_host::places::PlaceError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl ContainerError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ContainerError {
        let context = context.into();
        move |source| ContainerError::Io { context, source }
    }
}
