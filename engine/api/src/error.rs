//! API errors: an HTTP status and one sentence, sent as docker's `{"message": …}`.

use hyper::StatusCode;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A request the API answers with an error status (404, 409, 400, 500, …).
    #[error("{message}")]
    Http { status: StatusCode, message: String },
    #[error("cannot listen on {path}: {source} — check the directory exists and is writable")]
    Listen {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("another daemon is already serving {0} — stop it first, or pick another socket with --host")]
    AlreadyRunning(String),
    /// The sockets' directory is not one this user may trust (or cannot be made).
    #[error(transparent)]
    SocketDir(#[from] berth_host::places::PlaceError),
    /// `Server::start(…, Wait::No)` found another engine serving the root.
    #[error("another engine (pid {pid}) is serving {root}")]
    RootServed { root: String, pid: u32 },
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Http { status, .. } => *status,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn with(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError::Http {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        Self::with(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        Self::with(StatusCode::NOT_FOUND, message)
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        Self::with(StatusCode::CONFLICT, message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        Self::with(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    pub fn not_implemented(message: impl Into<String>) -> ApiError {
        Self::with(StatusCode::NOT_IMPLEMENTED, message)
    }
}

fn image_status(e: &berth_images::ImageError) -> StatusCode {
    use berth_images::ImageError as E;
    match e {
        E::NotFoundLocally(_) | E::NotFoundInRegistry { .. } => StatusCode::NOT_FOUND,
        E::Reference(_) | E::NoMatchingPlatform { .. } | E::BadArchive { .. } => StatusCode::BAD_REQUEST,
        E::MultipleTags { .. } => StatusCode::CONFLICT,
        E::Registry(r) if is_auth_error(r) => StatusCode::UNAUTHORIZED,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

pub(crate) fn is_auth_error(e: &berth_registry::RegistryError) -> bool {
    use berth_registry::RegistryError as E;
    matches!(e, E::Unauthorized { .. } | E::Denied { .. })
}

impl From<berth_images::ImageError> for ApiError {
    fn from(e: berth_images::ImageError) -> Self {
        Self::with(image_status(&e), e.to_string())
    }
}

impl From<berth_containers::ContainerError> for ApiError {
    fn from(e: berth_containers::ContainerError) -> Self {
        use berth_containers::ContainerError as E;
        let status = match &e {
            E::NotFound(_) => StatusCode::NOT_FOUND,
            E::NameInUse { .. }
            | E::Running(_)
            | E::NotRunning(_)
            | E::Paused(_)
            | E::ImageGone { .. }
            | E::Dead { .. }
            | E::HostPort(_) => StatusCode::CONFLICT,
            E::InvalidName(_)
            | E::InvalidArgument(_)
            | E::HostNetwork
            | E::SharedNamespace
            | E::PrivateNetwork => StatusCode::BAD_REQUEST,
            // dockerd's status for connecting a container twice.
            E::EndpointExists { .. } => StatusCode::FORBIDDEN,
            E::NotConnected { .. } => StatusCode::CONFLICT,
            E::Net(berth_containers::NetError::NetworkNotFound(_)) => StatusCode::NOT_FOUND,
            E::Net(
                berth_containers::NetError::InvalidName { .. }
                | berth_containers::NetError::InvalidSubnet { .. }
                | berth_containers::NetError::StaticAddress { .. },
            ) => StatusCode::BAD_REQUEST,
            E::Image(i) => image_status(i),
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::with(status, e.to_string())
    }
}

impl From<berth_reference::ReferenceError> for ApiError {
    fn from(e: berth_reference::ReferenceError) -> Self {
        Self::bad_request(e.to_string())
    }
}

impl From<berth_containers::NetError> for ApiError {
    fn from(e: berth_containers::NetError) -> Self {
        use berth_containers::NetError as E;
        let status = match &e {
            E::NetworkNotFound(_) => StatusCode::NOT_FOUND,
            E::NetworkExists(_) | E::NetworkInUse { .. } | E::PortInUse { .. } | E::SubnetOverlap { .. } => {
                StatusCode::CONFLICT
            }
            E::InvalidSubnet { .. }
            | E::BuiltinNetwork(_)
            | E::NotAttachable(_)
            | E::InvalidName { .. }
            | E::StaticAddress { .. } => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::with(status, e.to_string())
    }
}

impl From<berth_engine::RemoveError> for ApiError {
    fn from(e: berth_engine::RemoveError) -> Self {
        use berth_engine::RemoveError as E;
        match e {
            E::ImageInUse { .. } | E::VolumeInUse { .. } => Self::conflict(e.to_string()),
            E::NoSuchVolume(_) => Self::not_found(e.to_string()),
            E::Images(e) => e.into(),
            E::Containers(e) => e.into(),
        }
    }
}

impl From<berth_engine::OpenError> for ApiError {
    fn from(e: berth_engine::OpenError) -> Self {
        Self::internal(e.to_string())
    }
}
