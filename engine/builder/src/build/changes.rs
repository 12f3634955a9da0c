//! `commit --change` and `import --change`: Dockerfile instructions that change only the new
//! image's config — docker's list: CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL,
//! ONBUILD, STOPSIGNAL, USER, VOLUME and WORKDIR — applied as a build applies them, with
//! variables expanded from the image's ENV, and no history line of their own (as in docker).

use berth_dockerfile::{expand, Kind};

use super::metadata::{add_to_set, healthcheck_config, push_onbuild, set_env, set_labels};
use super::Session;
use crate::image::State;
use crate::BuildError;

const VALID: &str =
    "CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME or WORKDIR";

/// Applies `changes` (one instruction each, as `--change` gives them) to `state`'s config.
pub(crate) fn apply(state: &mut State, changes: &[String]) -> Result<(), BuildError> {
    if changes.iter().all(|c| c.trim().is_empty()) {
        return Ok(());
    }
    let text = format!("FROM scratch\n{}\n", changes.join("\n"));
    let file = berth_dockerfile::parse(&text).map_err(|e| {
        BuildError::Parse(format!(
            "invalid --change: {} — give one instruction per --change, such as 'CMD [\"app\"]'",
            e.message
        ))
    })?;
    if file.stages.len() > 1 {
        return Err(BuildError::Parse(format!(
            "FROM is not a valid change command — --change takes {VALID}"
        )));
    }
    let mut cmd_set = false;
    for ins in file.stages.iter().flat_map(|s| &s.instructions) {
        let bad = |message: String| BuildError::Parse(format!("--change '{}': {message}", ins.original));
        let env = state.env();
        let lookup = |name: &str| {
            env.iter().rev().find_map(|kv| {
                kv.strip_prefix(name)
                    .and_then(|r| r.strip_prefix('='))
                    .map(String::from)
            })
        };
        let word = |w: &str| expand::process_word(w, &lookup, '\\').map_err(|e| bad(e.to_string()));
        match &ins.kind {
            Kind::Cmd(c) => {
                let args = Session::command_args(state, c);
                state.container_config().set_cmd(Some(args));
                cmd_set = true;
            }
            Kind::Entrypoint(c) => {
                let args = Session::command_args(state, c);
                let cc = state.container_config();
                cc.set_entrypoint(Some(args));
                // As in a build: an ENTRYPOINT drops the CMD it did not come with.
                if !cmd_set {
                    cc.set_cmd(None);
                }
            }
            Kind::Env(kvs) => {
                let mut pairs = Vec::new();
                for kv in kvs {
                    pairs.push((kv.key.clone(), word(&kv.value)?));
                }
                set_env(state, &pairs);
            }
            Kind::Label(kvs) => {
                let mut pairs = Vec::new();
                for kv in kvs {
                    pairs.push((word(&kv.key)?, word(&kv.value)?));
                }
                set_labels(state, &pairs);
            }
            Kind::Expose(ports) => {
                let mut norm = Vec::new();
                for p in ports {
                    for p in expand::process_words(p, &lookup, '\\').map_err(|e| bad(e.to_string()))? {
                        let port = if p.contains('/') {
                            p.to_ascii_lowercase()
                        } else {
                            format!("{p}/tcp")
                        };
                        let num = port.split('/').next().unwrap_or("");
                        if !num.split('-').all(|n| n.parse::<u16>().is_ok_and(|n| n > 0)) {
                            return Err(bad(format!(
                                "invalid port {p} — use a number like 5000 or 5000/udp"
                            )));
                        }
                        norm.push(port);
                    }
                }
                let cc = state.container_config();
                let ports = add_to_set(cc.exposed_ports().clone(), &norm);
                cc.set_exposed_ports(Some(ports));
            }
            Kind::Workdir(w) => {
                let w = word(w)?;
                let path = if w.starts_with('/') {
                    w
                } else {
                    format!("{}/{}", state.working_dir().trim_end_matches('/'), w)
                };
                state.container_config().set_working_dir(Some(path));
            }
            Kind::User(u) => {
                let u = word(u)?;
                state.container_config().set_user(Some(u));
            }
            Kind::StopSignal(s) => {
                let s = word(s)?;
                state.container_config().set_stop_signal(Some(s));
            }
            Kind::Volume(vols) => {
                let mut v = Vec::new();
                for x in vols {
                    v.push(word(x)?);
                }
                let cc = state.container_config();
                let volumes = add_to_set(cc.volumes().clone(), &v);
                cc.set_volumes(Some(volumes));
            }
            Kind::Healthcheck(h) => {
                state
                    .container_config()
                    .extra
                    .insert("Healthcheck".into(), healthcheck_config(h));
            }
            Kind::Onbuild(inner) => push_onbuild(state.container_config(), &inner.original),
            _ => {
                let keyword = ins
                    .original
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_uppercase();
                return Err(BuildError::Parse(format!(
                    "{keyword} is not a valid change command — --change takes {VALID}"
                )));
            }
        }
    }
    Ok(())
}
