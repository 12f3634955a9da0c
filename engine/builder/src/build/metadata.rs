//! The config-only instructions: ENV, ARG, LABEL, EXPOSE, CMD, ENTRYPOINT, USER, VOLUME,
//! SHELL, STOPSIGNAL, HEALTHCHECK, ONBUILD and MAINTAINER. Each is a step without a layer
//! whose result is the parent's config with one change, and whose `#(nop)` history line
//! is what docker writes.

use berth_dockerfile::{ArgDecl, Healthcheck, KeyValue, ShellOrExec};
use berth_oci::ContainerConfig;

use super::{Session, StageVars};
use crate::image::State;
use crate::BuildError;

/// Go's `%q`-like rendering docker uses in history: `["python" "app.py"]`.
fn quoted_list(items: &[String]) -> String {
    let q: Vec<String> = items
        .iter()
        .map(|s| serde_json::to_string(s).unwrap_or_default())
        .collect();
    format!("[{}]", q.join(" "))
}

impl Session<'_> {
    /// ENV and LABEL: key-value pairs, expanded (docker expands LABEL's keys too, not
    /// ENV's), then set in the config by `apply`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn set_pairs(
        &mut self,
        state: &mut State,
        vars: &StageVars,
        instruction: &str,
        kvs: &[KeyValue],
        apply: fn(&mut State, &[(String, String)]),
        line: usize,
        escape: char,
    ) -> Result<(), BuildError> {
        let mut pairs = Vec::new();
        for kv in kvs {
            let key = if instruction == "LABEL" {
                self.expand(state, vars, &kv.key, escape, line)?
            } else {
                kv.key.clone()
            };
            pairs.push((key, self.expand(state, vars, &kv.value, escape, line)?));
        }
        let text: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let created_by = Self::nop(state, &format!("{instruction} {}", text.join(" ")));
        let detail = serde_json::json!(pairs);
        self.set_config_detailed(state, created_by, detail, move |st| apply(st, &pairs))
    }

    /// ARG: the value comes from `--build-arg`, else the default, else a global ARG of
    /// that name. Only later steps see it (RUN's environment, substitutions).
    pub(super) fn arg(
        &mut self,
        state: &mut State,
        vars: &mut StageVars,
        decls: &[ArgDecl],
        line: usize,
        escape: char,
    ) -> Result<(), BuildError> {
        let mut text = Vec::new();
        for d in decls {
            let value = if let Some(v) = self.build_args.get(&d.name) {
                self.used_args.insert(d.name.clone());
                Some(v.clone())
            } else if let Some(def) = &d.default {
                Some(self.expand(state, vars, def, escape, line)?)
            } else {
                self.global_lookup(&d.name)
            };
            vars.args.insert(d.name.clone(), value);
            text.push(match &d.default {
                Some(def) => format!("{}={def}", d.name),
                None => d.name.clone(),
            });
        }
        let created_by = Self::nop(state, &format!("ARG {}", text.join(" ")));
        self.set_config(state, created_by, |_| {})
    }

    /// EXPOSE: each port (or range) as `N/proto`, `tcp` when none is given.
    pub(super) fn expose(
        &mut self,
        state: &mut State,
        vars: &StageVars,
        ports: &[String],
        line: usize,
        escape: char,
    ) -> Result<(), BuildError> {
        let mut norm = Vec::new();
        for p in ports {
            let p = self.expand(state, vars, p, escape, line)?;
            for p in p.split_whitespace() {
                let port = if p.contains('/') {
                    p.to_ascii_lowercase()
                } else {
                    format!("{p}/tcp")
                };
                let num = port.split('/').next().unwrap_or("");
                let valid = num.split('-').all(|n| n.parse::<u16>().is_ok_and(|n| n > 0));
                if !valid {
                    return Err(BuildError::at(
                        line,
                        format!("invalid port {p} in EXPOSE — use a number like 5000 or 5000/udp"),
                    ));
                }
                norm.push(port);
            }
        }
        let shown: Vec<&str> = norm.iter().map(|p| p.trim_end_matches("/tcp")).collect();
        let created_by = Self::nop(state, &format!("EXPOSE {}", shown.join(" ")));
        self.set_config(state, created_by, move |st| {
            let cc = st.container_config();
            let ports = add_to_set(cc.exposed_ports().clone(), &norm);
            cc.set_exposed_ports(Some(ports));
        })
    }

    pub(super) fn cmd(
        &mut self,
        state: &mut State,
        vars: &mut StageVars,
        c: &ShellOrExec,
    ) -> Result<(), BuildError> {
        let args = Self::command_args(state, c);
        vars.cmd_set = true;
        let created_by = Self::nop(state, &format!("CMD {}", quoted_list(&args)));
        self.set_config(state, created_by, move |st| {
            st.container_config().set_cmd(Some(args.clone()));
        })
    }

    pub(super) fn entrypoint(
        &mut self,
        state: &mut State,
        vars: &StageVars,
        c: &ShellOrExec,
    ) -> Result<(), BuildError> {
        let args = Self::command_args(state, c);
        let reset_cmd = !vars.cmd_set;
        let created_by = Self::nop(state, &format!("ENTRYPOINT {}", quoted_list(&args)));
        // Whether it drops the CMD is not in the line; the parent cannot tell either (a
        // stage that set CMD and an image FROM that stage have the same parent here).
        let detail = serde_json::json!({ "reset_cmd": reset_cmd });
        self.set_config_detailed(state, created_by, detail, move |st| {
            let cc = st.container_config();
            cc.set_entrypoint(Some(args.clone()));
            // docker drops an inherited CMD when the stage sets ENTRYPOINT.
            if reset_cmd {
                cc.set_cmd(None);
            }
        })
    }

    /// USER and STOPSIGNAL: one word, expanded, into one field of the config.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn set_word(
        &mut self,
        state: &mut State,
        vars: &StageVars,
        instruction: &str,
        word: &str,
        field: fn(&mut ContainerConfig, Option<String>),
        line: usize,
        escape: char,
    ) -> Result<(), BuildError> {
        let word = self.expand(state, vars, word, escape, line)?;
        let created_by = Self::nop(state, &format!("{instruction} {word}"));
        self.set_config(state, created_by, move |st| {
            field(st.container_config(), Some(word.clone()));
        })
    }

    pub(super) fn volume(
        &mut self,
        state: &mut State,
        vars: &StageVars,
        vols: &[String],
        line: usize,
        escape: char,
    ) -> Result<(), BuildError> {
        let mut v = Vec::new();
        for x in vols {
            v.push(self.expand(state, vars, x, escape, line)?);
        }
        let created_by = Self::nop(state, &format!("VOLUME [{}]", v.join(" ")));
        let detail = serde_json::json!(v);
        self.set_config_detailed(state, created_by, detail, move |st| {
            let cc = st.container_config();
            let volumes = add_to_set(cc.volumes().clone(), &v);
            cc.set_volumes(Some(volumes));
        })
    }

    /// SHELL (named so beside [`Session::shell`], which reads the stage's shell).
    pub(super) fn shell_instruction(&mut self, state: &mut State, sh: &[String]) -> Result<(), BuildError> {
        let sh = sh.to_vec();
        let created_by = Self::nop(state, &format!("SHELL [{}]", sh.join(" ")));
        let detail = serde_json::json!(sh);
        self.set_config_detailed(state, created_by, detail, move |st| {
            st.container_config()
                .extra
                .insert("Shell".into(), serde_json::json!(sh.clone()));
        })
    }

    /// HEALTHCHECK: docker's `Healthcheck` config (durations in nanoseconds); the history
    /// shows the instruction as written.
    pub(super) fn healthcheck(
        &mut self,
        state: &mut State,
        h: &Healthcheck,
        original: &str,
    ) -> Result<(), BuildError> {
        let value = healthcheck_config(h);
        let text = original
            .split_once(char::is_whitespace)
            .map(|(_, rest)| rest)
            .unwrap_or("");
        let created_by = Self::nop(state, &format!("HEALTHCHECK {text}"));
        self.set_config(state, created_by, move |st| {
            st.container_config()
                .extra
                .insert("Healthcheck".into(), value.clone());
        })
    }

    /// ONBUILD: the trigger is stored as written, for builds FROM this image to run.
    pub(super) fn onbuild(&mut self, state: &mut State, trigger: &str) -> Result<(), BuildError> {
        let trigger = trigger.to_string();
        let created_by = Self::nop(state, &format!("ONBUILD {trigger}"));
        self.set_config(state, created_by, move |st| {
            push_onbuild(st.container_config(), &trigger)
        })
    }

    pub(super) fn maintainer(&mut self, state: &mut State, m: &str) -> Result<(), BuildError> {
        let m = m.to_string();
        let created_by = Self::nop(state, &format!("MAINTAINER {m}"));
        self.set_config(state, created_by, move |st| {
            st.config.set_author(Some(m.clone()));
        })
    }
}

/// docker's `Config.Healthcheck` for a HEALTHCHECK instruction.
/// Adds `trigger` to the config's `OnBuild` list.
pub(super) fn push_onbuild(cc: &mut ContainerConfig, trigger: &str) {
    let mut list: Vec<String> = cc
        .extra
        .get("OnBuild")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    list.push(trigger.to_string());
    cc.extra.insert("OnBuild".into(), serde_json::json!(list));
}

pub(super) fn healthcheck_config(h: &Healthcheck) -> serde_json::Value {
    match h {
        Healthcheck::None => serde_json::json!({"Test": ["NONE"]}),
        Healthcheck::Check {
            test,
            interval,
            timeout,
            start_period,
            start_interval,
            retries,
        } => {
            let test = match test {
                ShellOrExec::Shell(s) => vec!["CMD-SHELL".to_string(), s.clone()],
                ShellOrExec::Exec(v) => {
                    let mut t = vec!["CMD".to_string()];
                    t.extend(v.iter().cloned());
                    t
                }
            };
            let mut m = serde_json::Map::new();
            m.insert("Test".into(), serde_json::json!(test));
            for (k, d) in [
                ("Interval", interval),
                ("Timeout", timeout),
                ("StartPeriod", start_period),
                ("StartInterval", start_interval),
            ] {
                if let Some(d) = d {
                    m.insert(k.into(), serde_json::json!(d.as_nanos() as u64));
                }
            }
            if let Some(r) = retries {
                m.insert("Retries".into(), serde_json::json!(r));
            }
            serde_json::Value::Object(m)
        }
    }
}

/// EXPOSE's and VOLUME's change: a Go set (a JSON object of `{}`s) in the config, which
/// oci-spec holds as a list; kept sorted and without repeats, as docker writes it.
pub(super) fn add_to_set(set: Option<Vec<String>>, items: &[String]) -> Vec<String> {
    let mut set = set.unwrap_or_default();
    set.extend(items.iter().cloned());
    set.sort();
    set.dedup();
    set
}

/// ENV's change: each pair replaces the variable's earlier value.
pub(super) fn set_env(st: &mut State, pairs: &[(String, String)]) {
    let mut env = st.env();
    for (k, v) in pairs {
        env.retain(|e| e.split_once('=').map_or(e.as_str(), |(ek, _)| ek) != k);
        env.push(format!("{k}={v}"));
    }
    st.container_config().set_env(Some(env));
}

/// LABEL's change.
pub(super) fn set_labels(st: &mut State, pairs: &[(String, String)]) {
    let labels = st
        .container_config()
        .labels_mut()
        .get_or_insert_with(Default::default);
    for (k, v) in pairs {
        labels.insert(k.clone(), v.clone());
    }
}
