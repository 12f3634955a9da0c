//! Parsing the subset of Go's `text/template` that docker's `--format` uses: text,
//! `{{pipeline}}` actions with `{{-`/`-}}` trimming, fields (`.A.B`), variables (`$`,
//! `$x`, `{{$x := …}}`, `{{range $k, $v := …}}`), string/number/bool constants, `|`
//! pipelines, parentheses, `if`/`else if`/`else`, `range`, `with`, `break`, `continue`
//! and comments. Like Go, a function that does not exist is a parse error.

use std::fmt;

use super::exec::FUNCTIONS;

#[derive(Debug, Clone)]
pub enum Node {
    Text(String),
    /// Prints its pipeline unless the pipeline declares variables.
    Action(Pipeline),
    If(Branch),
    With(Branch),
    Range(Branch),
    Break,
    Continue,
}

#[derive(Debug, Clone)]
pub struct Branch {
    pub pipe: Pipeline,
    pub body: Vec<Node>,
    pub otherwise: Vec<Node>,
}

#[derive(Debug, Clone)]
pub struct Pipeline {
    /// `$x :=` / `$k, $v :=` (or `=` to assign an existing variable).
    pub decl: Vec<String>,
    pub cmds: Vec<Cmd>,
}

/// One command of a pipeline: a function with arguments, or one operand.
#[derive(Debug, Clone)]
pub struct Cmd {
    pub args: Vec<Arg>,
}

#[derive(Debug, Clone)]
pub enum Arg {
    /// `.`
    Dot,
    /// `.A.B` (from dot)
    Field(Vec<String>),
    /// `$x.A.B` (`$` alone is the data the template was given)
    Var(String, Vec<String>),
    /// `(pipeline).A.B`
    Sub(Box<Pipeline>, Vec<String>),
    Func(String),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
}

/// Why a template cannot be parsed: one sentence for the user.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub fn parse(src: &str) -> Result<Vec<Node>, ParseError> {
    let items = split_actions(src)?;
    let mut p = Parser { items, pos: 0, src };
    let (nodes, end) = p.list()?;
    match end {
        Closer::Eof => Ok(nodes),
        Closer::End => Err(p.err("has an {{end}} without an {{if}}, {{range}} or {{with}} to close")),
        Closer::Else(_) => Err(p.err("has an {{else}} outside {{if}}, {{range}} or {{with}}")),
    }
}

/// Text and the raw inside of each `{{…}}`, with trimming applied.
#[derive(Debug)]
enum Item {
    Text(String),
    Action(String),
}

fn split_actions(src: &str) -> Result<Vec<Item>, ParseError> {
    let unclosed = || {
        ParseError(format!(
            "the format template '{src}' has a '{{{{' without its '}}}}' — close every action, e.g. {{{{.Names}}}}"
        ))
    };
    let mut items = Vec::new();
    let mut rest = src;
    let mut trim_next = false;
    while let Some(start) = rest.find("{{") {
        let mut text = &rest[..start];
        if trim_next {
            text = text.trim_start();
        }
        let mut inner = &rest[start + 2..];
        if inner.starts_with("- ") || inner.starts_with("-\t") || inner.starts_with("-\n") {
            text = text.trim_end();
            inner = &inner[1..];
        }
        if !text.is_empty() {
            items.push(Item::Text(text.to_string()));
        }
        let end = find_close(inner).ok_or_else(unclosed)?;
        let mut action = &inner[..end];
        trim_next = false;
        if action.ends_with(" -") || action.ends_with("\t-") || action.ends_with("\n-") {
            action = &action[..action.len() - 1];
            trim_next = true;
        }
        items.push(Item::Action(action.to_string()));
        rest = &inner[end + 2..];
    }
    let text = if trim_next { rest.trim_start() } else { rest };
    if !text.is_empty() {
        items.push(Item::Text(text.to_string()));
    }
    Ok(items)
}

/// The `}}` that closes an action, skipping over quoted strings.
fn find_close(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
            }
            b'}' if b.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Dot,
    Field(String),
    Var(String),
    Ident(String),
    Str(String),
    Int(i64),
    Float(f64),
    Pipe,
    Open,
    Close,
    Declare,
    Assign,
    Comma,
}

fn lex(action: &str, src: &str) -> Result<Vec<Tok>, ParseError> {
    let bad = |what: String| ParseError(format!("the format template '{src}' {what}"));
    let chars: Vec<char> = action.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    let word = |i: &mut usize| {
        let start = *i;
        while *i < chars.len() && (chars[*i].is_alphanumeric() || chars[*i] == '_') {
            *i += 1;
        }
        chars[start..*i].iter().collect::<String>()
    };
    while i < chars.len() {
        let c = chars[i];
        let punct = match c {
            '|' => Some(Tok::Pipe),
            '(' => Some(Tok::Open),
            ')' => Some(Tok::Close),
            ',' => Some(Tok::Comma),
            '=' => Some(Tok::Assign),
            _ => None,
        };
        if let Some(t) = punct {
            toks.push(t);
            i += 1;
            continue;
        }
        match c {
            c if c.is_whitespace() => i += 1,
            ':' if chars.get(i + 1) == Some(&'=') => {
                toks.push(Tok::Declare);
                i += 2;
            }
            '.' => {
                i += 1;
                if i < chars.len() && (chars[i].is_alphabetic() || chars[i] == '_') {
                    toks.push(Tok::Field(word(&mut i)));
                } else {
                    toks.push(Tok::Dot);
                }
            }
            '$' => {
                i += 1;
                toks.push(Tok::Var(format!("${}", word(&mut i))));
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(bad("has a string without its closing '\"'".into())),
                        Some('"') => break,
                        Some('\\') => {
                            i += 1;
                            match chars.get(i) {
                                Some('n') => s.push('\n'),
                                Some('t') => s.push('\t'),
                                Some('r') => s.push('\r'),
                                Some('\\') => s.push('\\'),
                                Some('"') => s.push('"'),
                                Some(other) => {
                                    return Err(bad(format!(
                                        "has the unknown escape '\\{other}' in a string — use \\n, \\t, \\\\ or \\\""
                                    )))
                                }
                                None => return Err(bad("has a string without its closing '\"'".into())),
                            }
                        }
                        Some(&ch) => s.push(ch),
                    }
                    i += 1;
                }
                i += 1;
                toks.push(Tok::Str(s));
            }
            '`' => {
                let start = i + 1;
                let end = chars[start..]
                    .iter()
                    .position(|&c| c == '`')
                    .ok_or_else(|| bad("has a raw string without its closing '`'".into()))?;
                toks.push(Tok::Str(chars[start..start + end].iter().collect()));
                i = start + end + 1;
            }
            c if c.is_ascii_digit() || ((c == '-' || c == '+') && chars.get(i + 1).is_some_and(char::is_ascii_digit)) => {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.' || chars[i] == '_') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                let clean = text.replace('_', "");
                if let Ok(n) = clean.parse::<i64>() {
                    toks.push(Tok::Int(n));
                } else if let Ok(f) = clean.parse::<f64>() {
                    toks.push(Tok::Float(f));
                } else {
                    return Err(bad(format!("has a bad number '{text}'")));
                }
            }
            c if c.is_alphabetic() || c == '_' => {
                let w = word(&mut i);
                // `.Field` right after an identifier is a syntax error in Go too.
                toks.push(Tok::Ident(w));
            }
            other => {
                return Err(bad(format!(
                    "has the unexpected character '{other}' in '{{{{{action}}}}}' — fields start with '.', e.g. {{{{.Names}}}}"
                )))
            }
        }
    }
    Ok(toks)
}

enum Closer {
    Eof,
    End,
    /// `{{else}}` (None) or `{{else if …}}` / `{{else with …}}` (the keyword and the rest).
    Else(Option<(String, Vec<Tok>)>),
}

struct Parser<'a> {
    items: Vec<Item>,
    pos: usize,
    src: &'a str,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> ParseError {
        ParseError(format!("the format template '{}' {what}", self.src))
    }

    /// Nodes up to the end of input, `{{end}}` or `{{else}}`.
    fn list(&mut self) -> Result<(Vec<Node>, Closer), ParseError> {
        let mut nodes = Vec::new();
        while self.pos < self.items.len() {
            let item = &self.items[self.pos];
            self.pos += 1;
            let action = match item {
                Item::Text(t) => {
                    nodes.push(Node::Text(t.clone()));
                    continue;
                }
                Item::Action(a) => a.clone(),
            };
            let trimmed = action.trim();
            if trimmed.starts_with("/*") {
                if !trimmed.ends_with("*/") {
                    return Err(self.err("has a comment without its closing '*/'"));
                }
                continue;
            }
            let toks = lex(&action, self.src)?;
            match toks.first() {
                None => {
                    return Err(self.err("has an empty action '{{}}' — put a field in it, e.g. {{.Names}}"))
                }
                Some(Tok::Ident(k)) if k == "end" => {
                    self.no_args(&toks, "end")?;
                    return Ok((nodes, Closer::End));
                }
                Some(Tok::Ident(k)) if k == "else" => {
                    return match toks.get(1) {
                        None => Ok((nodes, Closer::Else(None))),
                        Some(Tok::Ident(k2)) if k2 == "if" || k2 == "with" => {
                            Ok((nodes, Closer::Else(Some((k2.clone(), toks[2..].to_vec())))))
                        }
                        Some(_) => {
                            Err(self.err("has an {{else}} followed by something other than if or with"))
                        }
                    };
                }
                Some(Tok::Ident(k)) if k == "if" || k == "with" || k == "range" => {
                    let k = k.clone();
                    nodes.push(self.control(&k, &toks[1..])?);
                }
                Some(Tok::Ident(k)) if k == "break" || k == "continue" => {
                    self.no_args(&toks, k)?;
                    nodes.push(if k == "break" { Node::Break } else { Node::Continue });
                }
                Some(Tok::Ident(k)) if matches!(k.as_str(), "define" | "template" | "block") => {
                    return Err(self.err(&format!(
                        "uses {{{{{k}}}}}, which berth's templates do not support — write the text inline"
                    )))
                }
                _ => nodes.push(Node::Action(self.pipeline(&toks)?)),
            }
        }
        Ok((nodes, Closer::Eof))
    }

    fn no_args(&self, toks: &[Tok], k: &str) -> Result<(), ParseError> {
        if toks.len() > 1 {
            return Err(self.err(&format!("has something after '{k}' in {{{{{k}}}}}")));
        }
        Ok(())
    }

    fn control(&mut self, keyword: &str, toks: &[Tok]) -> Result<Node, ParseError> {
        if toks.is_empty() {
            return Err(self.err(&format!(
                "has a {{{{{keyword}}}}} without a condition, e.g. {{{{{keyword} .Names}}}}"
            )));
        }
        let pipe = self.pipeline(toks)?;
        let (body, end) = self.list()?;
        let otherwise = match end {
            Closer::Eof => return Err(self.err(&format!("has a {{{{{keyword}}}}} without its {{{{end}}}}"))),
            Closer::End => Vec::new(),
            Closer::Else(None) => {
                let (otherwise, end) = self.list()?;
                if !matches!(end, Closer::End) {
                    return Err(self.err(&format!(
                        "has a {{{{{keyword}}}}} … {{{{else}}}} without its {{{{end}}}}"
                    )));
                }
                otherwise
            }
            // `{{else if x}}…{{end}}` is `{{else}}{{if x}}…{{end}}{{end}}`: one shared end.
            Closer::Else(Some((k2, rest))) => vec![self.control(&k2, &rest)?],
        };
        let branch = Branch {
            pipe,
            body,
            otherwise,
        };
        Ok(match keyword {
            "if" => Node::If(branch),
            "with" => Node::With(branch),
            _ => Node::Range(branch),
        })
    }

    fn pipeline(&self, toks: &[Tok]) -> Result<Pipeline, ParseError> {
        let mut decl = Vec::new();
        let mut toks = toks;
        // `$x :=`, `$k, $v :=`, `$x =`
        let decl_end = toks.iter().position(|t| matches!(t, Tok::Declare | Tok::Assign));
        if let Some(end) = decl_end {
            let names = &toks[..end];
            let mut ok = !names.is_empty();
            for (i, t) in names.iter().enumerate() {
                match (i % 2, t) {
                    (0, Tok::Var(v)) => decl.push(v.clone()),
                    (1, Tok::Comma) => {}
                    _ => ok = false,
                }
            }
            if !ok || decl.len() > 2 {
                return Err(self.err(
                    "declares variables wrongly — write {{$x := .Field}} or {{range $k, $v := .Field}}",
                ));
            }
            toks = &toks[end + 1..];
        }
        let mut cmds = Vec::new();
        for part in split_top(toks, &Tok::Pipe) {
            if part.is_empty() {
                return Err(
                    self.err("has an empty command in a pipeline — put something on each side of '|'")
                );
            }
            cmds.push(Cmd {
                args: self.args(part)?,
            });
        }
        if cmds.is_empty() {
            return Err(self.err("has an action with nothing to print, e.g. {{$x := }}"));
        }
        for c in &cmds[1..] {
            if !matches!(c.args[0], Arg::Func(_) | Arg::Field(_) | Arg::Var(..)) {
                return Err(self.err("pipes a value into a constant — the right of '|' must be a function, e.g. {{.Names | upper}}"));
            }
        }
        Ok(Pipeline { decl, cmds })
    }

    fn args(&self, toks: &[Tok]) -> Result<Vec<Arg>, ParseError> {
        let mut args = Vec::new();
        let mut i = 0;
        while i < toks.len() {
            let arg = match &toks[i] {
                Tok::Dot => Arg::Dot,
                Tok::Field(f) => {
                    let mut path = vec![f.clone()];
                    while let Some(Tok::Field(g)) = toks.get(i + 1) {
                        path.push(g.clone());
                        i += 1;
                    }
                    Arg::Field(path)
                }
                Tok::Var(v) => {
                    let mut path = Vec::new();
                    while let Some(Tok::Field(g)) = toks.get(i + 1) {
                        path.push(g.clone());
                        i += 1;
                    }
                    Arg::Var(v.clone(), path)
                }
                Tok::Open => {
                    let close = matching_close(&toks[i..])
                        .ok_or_else(|| self.err("has a '(' without its ')'"))?;
                    let inner = self.pipeline(&toks[i + 1..i + close])?;
                    i += close;
                    let mut path = Vec::new();
                    while let Some(Tok::Field(g)) = toks.get(i + 1) {
                        path.push(g.clone());
                        i += 1;
                    }
                    Arg::Sub(Box::new(inner), path)
                }
                Tok::Str(s) => Arg::Str(s.clone()),
                Tok::Int(n) => Arg::Int(*n),
                Tok::Float(f) => Arg::Float(*f),
                Tok::Ident(w) => match w.as_str() {
                    "true" => Arg::Bool(true),
                    "false" => Arg::Bool(false),
                    "nil" => Arg::Nil,
                    name if FUNCTIONS.contains(&name) => Arg::Func(name.to_string()),
                    name => {
                        return Err(self.err(&format!(
                            "uses the function '{name}', which does not exist — use a field like .Names or one of the functions {}",
                            FUNCTIONS.join(", ")
                        )))
                    }
                },
                Tok::Close => return Err(self.err("has a ')' without its '('")),
                Tok::Comma | Tok::Declare | Tok::Assign => {
                    return Err(self.err("has a ',', ':=' or '=' where a value belongs"))
                }
                Tok::Pipe => return Err(self.err("has a '|' where a value belongs")),
            };
            args.push(arg);
            i += 1;
        }
        if args.len() > 1
            && !matches!(
                args[0],
                Arg::Func(_) | Arg::Field(_) | Arg::Var(..) | Arg::Sub(..)
            )
        {
            return Err(self.err("gives arguments to something that is not a function — put the function first, e.g. {{truncate .Image 5}}"));
        }
        Ok(args)
    }
}

/// Splits at `sep` outside parentheses.
fn split_top<'t>(toks: &'t [Tok], sep: &Tok) -> Vec<&'t [Tok]> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::Open => depth += 1,
            Tok::Close => depth = depth.saturating_sub(1),
            t if t == sep && depth == 0 => {
                parts.push(&toks[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < toks.len() || !parts.is_empty() {
        parts.push(&toks[start..]);
    }
    parts
}

/// Index (relative to `toks[0] == Open`) of the matching `)`.
fn matching_close(toks: &[Tok]) -> Option<usize> {
    let mut depth = 0usize;
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::Open => depth += 1,
            Tok::Close => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(src: &str) -> String {
        parse(src).expect_err("should not parse").0
    }

    #[test]
    fn parses_docker_templates() {
        for ok in [
            "table {{.Names}}\t{{truncate .Image 25}}\t{{.Status}}",
            "{{range $p, $conf := .NetworkSettings.Ports}}{{$p}} -> {{(index $conf 0).HostPort}}{{end}}",
            "{{if eq .State \"running\"}}up{{else if .Status}}x{{else}}down{{end}}",
            "{{- .Names -}} {{/* a comment */}}",
            "{{.Label \"com.example\"}}{{.Image | lower | upper}}",
            "{{with .Config}}{{.Image}}{{end}}",
        ] {
            parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn trims_around_dashes() {
        let nodes = parse("a  {{- .X -}}  b").expect("parse");
        let texts: Vec<String> = nodes
            .iter()
            .filter_map(|n| match n {
                Node::Text(t) => Some(t.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(texts, ["a", "b"]);
    }

    #[test]
    fn bad_templates_are_one_sentence() {
        assert!(err("{{nope .Names}}").contains("the function 'nope', which does not exist"));
        assert!(err("{{.Names").contains("without its '}}'"));
        assert!(err("{{if .X}}a").contains("without its {{end}}"));
        assert!(err("{{end}}").contains("{{end}} without"));
        assert!(err("{{\"a\" .X}}").contains("not a function"));
        assert!(err("{{.X | 3}}").contains("constant"));
        assert!(err("{{(.X}}").contains("'(' without"));
        for e in [err("{{nope}}"), err("{{.X \"}}")] {
            assert!(!e.contains('\n'), "{e}");
        }
    }
}
