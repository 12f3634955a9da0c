//! Renders the engine's pull and push progress (docker's JSON messages): one bar per
//! layer on a terminal, docker's plain status lines otherwise (logs, CI, pipes).

use std::collections::HashMap;
use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::Value;

pub struct Progress {
    quiet: bool,
    to_stderr: bool,
    bars: Option<Bars>,
    /// The last status printed for each layer (lines mode prints changes only).
    last: HashMap<String, String>,
}

impl Progress {
    /// Progress on stdout; `quiet` shows nothing.
    pub fn stdout(quiet: bool) -> Progress {
        Self::new(quiet, false, std::io::stdout().is_terminal())
    }

    /// Progress on stderr as lines (for `run`, whose stdout belongs to the container).
    pub fn stderr() -> Progress {
        Self::new(false, true, false)
    }

    fn new(quiet: bool, to_stderr: bool, bars: bool) -> Progress {
        Progress {
            quiet,
            to_stderr,
            bars: bars.then(Bars::default),
            last: HashMap::new(),
        }
    }

    /// One message of the stream.
    pub fn message(&mut self, v: &Value) {
        if self.quiet {
            return;
        }
        let status = v.get("status").and_then(Value::as_str).unwrap_or_default();
        if status.is_empty() {
            return;
        }
        let id = v.get("id").and_then(Value::as_str).filter(|i| !i.is_empty());
        let detail = v.get("progressDetail");
        let num = |k: &str| detail.and_then(|d| d.get(k)).and_then(Value::as_u64);
        if let Some(bars) = &self.bars {
            match id {
                Some(id) => bars.update(id, status, num("current"), num("total")),
                None => {
                    let _ = bars.multi.println(status);
                }
            }
            return;
        }
        let line = match id {
            Some(id) => {
                if self.last.get(id).map(String::as_str) == Some(status) {
                    return;
                }
                self.last.insert(id.to_string(), status.to_string());
                format!("{id}: {status}")
            }
            None => status.to_string(),
        };
        if self.to_stderr {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
}

/// One indicatif bar per layer.
#[derive(Default)]
struct Bars {
    multi: MultiProgress,
    bars: std::sync::Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    fn update(&self, id: &str, status: &str, current: Option<u64>, total: Option<u64>) {
        let mut bars = self
            .bars
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let bar = bars.entry(id.to_string()).or_insert_with(|| {
            let bar = self.multi.add(ProgressBar::new(0));
            bar.set_style(
                ProgressStyle::with_template("{prefix}: {msg:<18} [{bar:30}] {bytes}/{total_bytes}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(id.to_string());
            bar
        });
        if bar.is_finished() {
            return;
        }
        if let (Some(c), Some(t)) = (current, total) {
            bar.set_length(t);
            bar.set_position(c);
        }
        let done = matches!(
            status,
            "Pull complete" | "Already exists" | "Pushed" | "Layer already exists"
        ) || status.starts_with("Mounted from");
        if done {
            bar.set_style(ProgressStyle::with_template("{prefix}: {msg}").expect("valid template"));
            bar.finish_with_message(status.to_string());
        } else {
            bar.set_message(status.to_string());
        }
    }
}
