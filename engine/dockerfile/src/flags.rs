//! Instruction flags (`--from=`, `--link`, `--mount=` …) checked against what each
//! instruction accepts, with BuildKit's rules: string flags need `=value`, only
//! repeatable flags may repeat, booleans take `true`/`false` or nothing.

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlagType {
    Bool,
    String,
    /// May repeat; every value is kept.
    Strings,
}

pub(crate) struct Flags {
    keyword: &'static str,
    values: Vec<(&'static str, FlagType, Vec<String>)>,
}

impl Flags {
    /// Parses `raw` (as split by `extract_flags`, `--` included) for an instruction
    /// accepting `accepted`.
    pub(crate) fn parse(
        keyword: &'static str,
        accepted: &[(&'static str, FlagType)],
        raw: &[String],
    ) -> Result<Flags, String> {
        let mut values: Vec<(&'static str, FlagType, Vec<String>)> = accepted
            .iter()
            .map(|(name, kind)| (*name, *kind, Vec::new()))
            .collect();
        for arg in raw {
            let Some(arg) = arg.strip_prefix("--") else {
                return Err(format!(
                    "{keyword} flag \"{arg}\" should start with -- — write it as --name=value"
                ));
            };
            let (name, value) = match arg.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (arg, None),
            };
            let Some((known, kind, found)) = values.iter_mut().find(|(n, _, _)| *n == name) else {
                return Err(unknown_flag(keyword, name, accepted));
            };
            if *kind != FlagType::Strings && !found.is_empty() {
                return Err(format!("{keyword} flag --{known} is given twice — keep one"));
            }
            match (*kind, value) {
                (FlagType::Bool, None) => found.push("true".into()),
                (FlagType::Bool, Some(v)) if v.eq_ignore_ascii_case("true") => found.push("true".into()),
                (FlagType::Bool, Some(v)) if v.eq_ignore_ascii_case("false") => found.push("false".into()),
                (FlagType::Bool, Some("")) => {
                    return Err(format!("{keyword} flag --{known}= is missing a value — write --{known} or --{known}=true"))
                }
                (FlagType::Bool, Some(v)) => {
                    return Err(format!(
                        "{keyword} flag --{known} expects true or false, not \"{v}\" — write --{known} or --{known}=false"
                    ))
                }
                (_, None) => {
                    return Err(format!("{keyword} flag --{known} is missing a value — write it as --{known}=VALUE"))
                }
                (_, Some(v)) => found.push(v.to_string()),
            }
        }
        Ok(Flags { keyword, values })
    }

    fn values(&self, name: &str) -> &[String] {
        self.values
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, _, v)| v.as_slice())
            .unwrap_or(&[])
    }

    pub(crate) fn string(&self, name: &str) -> Option<String> {
        self.values(name).last().cloned()
    }

    pub(crate) fn strings(&self, name: &str) -> Vec<String> {
        self.values(name).to_vec()
    }

    pub(crate) fn bool(&self, name: &str) -> bool {
        self.values(name).last().is_some_and(|v| v == "true")
    }

    pub(crate) fn keyword(&self) -> &'static str {
        self.keyword
    }
}

fn unknown_flag(keyword: &str, name: &str, accepted: &[(&'static str, FlagType)]) -> String {
    if accepted.is_empty() {
        return format!("{keyword} takes no flags, but --{name} was given — remove it");
    }
    let list: Vec<String> = accepted.iter().map(|(n, _)| format!("--{n}")).collect();
    let suggestion = accepted
        .iter()
        .map(|(n, _)| (edit_distance(n, name), n))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, n)| format!(" (did you mean --{n}?)"))
        .unwrap_or_default();
    format!(
        "unknown {keyword} flag --{name}{suggestion} — {keyword} accepts {}",
        list.join(", ")
    )
}

/// Levenshtein distance, for "did you mean" hints.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}
