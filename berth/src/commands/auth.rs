//! `login` and `logout`, with credentials kept in docker's config.json.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::bail;
use berth_registry::credentials;

use crate::cli::LoginArgs;
use crate::client::{self, Client};

const DEFAULT_SERVER: &str = "docker.io";

/// `https://index.docker.io/v1/` and friends all mean Docker Hub.
fn registry_of(server: Option<&str>) -> String {
    let s = server.unwrap_or(DEFAULT_SERVER);
    let host = s
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or(s);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => DEFAULT_SERVER.to_string(),
        other => other.to_string(),
    }
}

pub async fn login(c: &Client, a: LoginArgs) -> anyhow::Result<u8> {
    let registry = registry_of(a.server.as_deref());
    let username = match a.username {
        Some(u) => u,
        None => {
            if !std::io::stdin().is_terminal() || a.password_stdin {
                bail!("no username given — use `berth login -u NAME --password-stdin {registry}`");
            }
            print!("Username: ");
            std::io::stdout().flush()?;
            let mut u = String::new();
            std::io::stdin().lock().read_line(&mut u)?;
            u.trim().to_string()
        }
    };
    let password = match (a.password, a.password_stdin) {
        (Some(_), true) => bail!("--password and --password-stdin are mutually exclusive — use one of them"),
        (Some(p), false) => {
            eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
            p
        }
        (None, true) => {
            let mut p = String::new();
            std::io::stdin().lock().read_line(&mut p)?;
            p.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => {
            if !std::io::stdin().is_terminal() {
                bail!("cannot ask for a password without a terminal — use --password-stdin");
            }
            rpassword::prompt_password("Password: ")?
        }
    };
    if username.is_empty() || password.is_empty() {
        bail!("username and password must not be empty — give both to log in to {registry}");
    }
    // The engine checks the login, as dockerd does; the credentials stay in this user's file.
    let body = serde_json::json!({"username": username, "password": password, "serveraddress": registry});
    c.post_json("/auth", client::full(body.to_string())).await?;
    let path = config_path()?;
    let mut file = credentials::DockerConfigFile::load(&path)?;
    file.store(&registry, &credentials::Credential { username, password })?;
    file.save(&path)?;
    println!("Login Succeeded");
    Ok(0)
}

pub fn logout(server: Option<String>) -> anyhow::Result<u8> {
    let registry = registry_of(server.as_deref());
    let path = config_path()?;
    let mut file = credentials::DockerConfigFile::load(&path)?;
    let removed = file.erase(&registry)?;
    if removed {
        file.save(&path)?;
    }
    match removed {
        true => println!("Removing login credentials for {registry}"),
        false => println!("Not logged in to {registry}"),
    }
    Ok(0)
}

fn config_path() -> anyhow::Result<std::path::PathBuf> {
    credentials::default_path().ok_or_else(|| {
        anyhow::anyhow!("cannot find your docker config directory — set DOCKER_CONFIG or HOME")
    })
}
