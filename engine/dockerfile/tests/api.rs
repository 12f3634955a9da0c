//! Helpers over the AST: stage lookup and what a RUN with heredocs executes.

use berth_dockerfile::{parse, Kind, Run, RunScript, ShellOrExec};

fn runs(text: &str) -> Vec<Run> {
    let dockerfile = parse(text).unwrap_or_else(|e| panic!("{e}"));
    dockerfile.stages[0]
        .instructions
        .iter()
        .filter_map(|i| match &i.kind {
            Kind::Run(run) => Some(run.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn find_stage_by_name_or_index() {
    let dockerfile = parse("FROM a AS Build\nFROM b\nFROM build\n").expect("parses");
    assert_eq!(dockerfile.find_stage("build").map(|s| s.index), Some(0));
    assert_eq!(
        dockerfile.find_stage("BUILD").map(|s| s.index),
        Some(0),
        "names are case-insensitive"
    );
    assert_eq!(dockerfile.find_stage("1").map(|s| s.base.as_str()), Some("b"));
    assert_eq!(dockerfile.find_stage("7"), None);
    assert_eq!(
        dockerfile.find_stage("debian:12"),
        None,
        "anything else is an image"
    );
}

#[test]
fn run_scripts_fold_heredocs_like_buildkit() {
    let text = "FROM busybox\n\
        RUN echo plain\n\
        RUN [\"echo\", \"exec\"]\n\
        RUN <<EOF\necho one\necho two\nEOF\n\
        RUN <<-EOF\n\t#!/bin/sh\n\techo script\n\tEOF\n\
        RUN python3 <<EOF\nprint(1)\nEOF\n\
        RUN <<A cat > /a && <<B cat > /b\na\nA\nb\nB\n\
        RUN <<EOF bash\necho via bash\nEOF\n\
        RUN <<  SPACED\necho spaced\nSPACED\n";
    let scripts: Vec<RunScript> = runs(text).iter().map(Run::script).collect();
    let shell = |s: &str| RunScript::Command(ShellOrExec::Shell(s.to_string()));
    assert_eq!(
        scripts,
        [
            shell("echo plain"),
            RunScript::Command(ShellOrExec::Exec(vec!["echo".into(), "exec".into()])),
            shell("echo one\necho two\n"),
            RunScript::Executable {
                name: "EOF".into(),
                content: "#!/bin/sh\necho script\n".into()
            },
            shell("python3 <<EOF\nprint(1)\nEOF"),
            shell("<<A cat > /a && <<B cat > /b\na\nA\nb\nB"),
            shell("<<EOF bash\necho via bash\nEOF"),
            shell("echo spaced\n"),
        ]
    );
}
