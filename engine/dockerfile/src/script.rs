//! What a RUN executes once its heredocs are folded in, by BuildKit's rules.

use crate::ast::{Run, ShellOrExec};
use crate::instructions::{heredoc_word, join_heredoc_operators};
use crate::words::raw_words;

/// The program a RUN step starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunScript {
    /// Exec form as is, or a command line for the stage's SHELL. For `RUN <<EOF` the line
    /// is the heredoc body; for heredocs inside a longer command (`RUN python3 <<EOF`) it
    /// is the command followed by each body and its terminator, for the shell to read.
    Command(ShellOrExec),
    /// `RUN <<EOF` whose body starts with `#!`: write `content` to an executable file
    /// called `name` and run that file, without the SHELL.
    Executable { name: String, content: String },
}

impl Run {
    /// What to execute for this RUN (see [`RunScript`]).
    pub fn script(&self) -> RunScript {
        let ShellOrExec::Shell(line) = &self.command else {
            return RunScript::Command(self.command.clone());
        };
        let Some(first) = self.heredocs.first() else {
            return RunScript::Command(self.command.clone());
        };
        let joined = join_heredoc_operators(line.trim());
        let sole = raw_words(&joined, '\\').len() == 1 && matches!(heredoc_word(&joined), Ok(Some(_)));
        if sole {
            if first.content.starts_with("#!") {
                return RunScript::Executable {
                    name: first.name.clone(),
                    content: first.content.clone(),
                };
            }
            return RunScript::Command(ShellOrExec::Shell(first.content.clone()));
        }
        let mut full = line.clone();
        for heredoc in &self.heredocs {
            full.push('\n');
            full.push_str(&heredoc.content);
            full.push_str(&heredoc.name);
        }
        RunScript::Command(ShellOrExec::Shell(full))
    }
}
