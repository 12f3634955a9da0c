//! Renders pull/push progress: one bar per layer on a terminal, docker's plain status
//! lines otherwise (logs, CI, pipes).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use berth_images::{Progress, ProgressEvent};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

pub fn for_stdout(quiet: bool) -> std::sync::Arc<dyn Progress> {
    if quiet {
        std::sync::Arc::new(berth_images::NoProgress)
    } else if std::io::stdout().is_terminal() {
        std::sync::Arc::new(Bars::default())
    } else {
        std::sync::Arc::new(Lines::default())
    }
}

/// Pull progress on stderr (for `run`, whose stdout belongs to the container).
pub fn for_stderr() -> std::sync::Arc<dyn Progress> {
    std::sync::Arc::new(Lines {
        to_stderr: true,
        ..Default::default()
    })
}

/// Plain lines, one per state change, as docker prints when stdout is not a terminal.
#[derive(Default)]
pub struct Lines {
    seen_downloading: Mutex<std::collections::HashSet<String>>,
    to_stderr: bool,
}

impl Progress for Lines {
    fn event(&self, event: ProgressEvent) {
        let line = match event {
            ProgressEvent::Status(s) => s,
            ProgressEvent::Waiting { id, .. } => format!("{id}: Pulling fs layer"),
            ProgressEvent::AlreadyExists { id } => format!("{id}: Already exists"),
            ProgressEvent::Downloading { id, .. } => {
                if !self
                    .seen_downloading
                    .lock()
                    .expect("not poisoned")
                    .insert(id.clone())
                {
                    return;
                }
                format!("{id}: Downloading")
            }
            ProgressEvent::Verifying { id } => format!("{id}: Verifying Checksum\n{id}: Download complete"),
            ProgressEvent::Extracting { id } => format!("{id}: Extracting"),
            ProgressEvent::PullComplete { id } => format!("{id}: Pull complete"),
            ProgressEvent::Pushing { id, current, .. } => {
                if current > 0
                    && !self
                        .seen_downloading
                        .lock()
                        .expect("not poisoned")
                        .insert(id.clone())
                {
                    return;
                }
                format!("{id}: Pushing")
            }
            ProgressEvent::Mounted { id, from } => format!("{id}: Mounted from {from}"),
            ProgressEvent::Pushed { id } => format!("{id}: Pushed"),
            ProgressEvent::Retrying { id, reason } => format!("{id}: Retrying: {reason}"),
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
pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    fn bar(&self, id: &str, total: u64) -> ProgressBar {
        let mut bars = self.bars.lock().expect("not poisoned");
        bars.entry(id.to_string())
            .or_insert_with(|| {
                let bar = self.multi.add(ProgressBar::new(total));
                bar.set_style(
                    ProgressStyle::with_template("{prefix}: {msg:<18} [{bar:30}] {bytes}/{total_bytes}")
                        .expect("valid template")
                        .progress_chars("=> "),
                );
                bar.set_prefix(id.to_string());
                bar
            })
            .clone()
    }

    fn message(&self, id: &str, msg: &'static str, done: bool) {
        let bar = self.bar(id, 0);
        if done {
            bar.set_style(ProgressStyle::with_template("{prefix}: {msg}").expect("valid template"));
            bar.finish_with_message(msg);
        } else {
            bar.set_message(msg);
        }
    }
}

impl Progress for Bars {
    fn event(&self, event: ProgressEvent) {
        match event {
            ProgressEvent::Status(s) => {
                let _ = self.multi.println(s);
            }
            ProgressEvent::Waiting { id, total } => {
                self.bar(&id, total).set_message("Waiting");
            }
            ProgressEvent::AlreadyExists { id } => self.message(&id, "Already exists", true),
            ProgressEvent::Downloading { id, current, total }
            | ProgressEvent::Pushing { id, current, total } => {
                let bar = self.bar(&id, total);
                bar.set_length(total);
                bar.set_position(current);
                bar.set_message("Transferring");
            }
            ProgressEvent::Verifying { id } => self.message(&id, "Verifying Checksum", false),
            ProgressEvent::Extracting { id } => self.message(&id, "Extracting", false),
            ProgressEvent::PullComplete { id } => self.message(&id, "Pull complete", true),
            ProgressEvent::Mounted { id, .. } => self.message(&id, "Mounted", true),
            ProgressEvent::Pushed { id } => self.message(&id, "Pushed", true),
            ProgressEvent::Retrying { id, .. } => self.message(&id, "Retrying", false),
        }
    }
}
