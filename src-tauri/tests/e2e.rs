//! End to end in the real window: the built app under Xvfb, driven through tauri-driver +
//! WebKitWebDriver with fantoccini, against a real loopback registry holding fixture images
//! made by third-party tools. The flow is the lecture's: pull → run with a port → open in
//! the browser → logs search → terminal (writing into a volume) → inspect / stats → build →
//! push → browse the volume's files → stop → remove.
//!
//! `desktop_e2e_embedded` runs it on Berth's engine inside the app (the default);
//! `desktop_e2e_podman` runs the same clicks against a podman API socket, showing the UI
//! speaks only the Docker Engine API. Screenshots of every view are saved and printed.

mod e2e_support;

use std::time::Duration;

use anyhow::{ensure, Context};
use berth_tests::registry::{Mode, Registry};
use e2e_support::{Engine, Session, Ui};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_e2e_embedded() -> anyhow::Result<()> {
    lecture_flow(Engine::Embedded).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_e2e_podman() -> anyhow::Result<()> {
    lecture_flow(Engine::Podman).await
}

/// The same flow with the app started by an ordinary user (made with `useradd`, with
/// subordinate ids), as a student who installed the .deb opens it from the menu: the
/// built-in engine is then the rootless one, and the window says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_e2e_rootless() -> anyhow::Result<()> {
    let user = berth_tests::rootless::User::ensure("berth-desktop-it");
    run_flow(Engine::Embedded, Some(user)).await
}

async fn lecture_flow(engine: Engine) -> anyhow::Result<()> {
    run_flow(engine, None).await
}

async fn run_flow(engine: Engine, user: Option<berth_tests::rootless::User>) -> anyhow::Result<()> {
    let fixtures = berth_tests::fixtures::dir();
    for name in ["flask", "busybox"] {
        ensure!(
            fixtures.join(name).join("index.json").is_file(),
            "fixture {name} missing in {}: run FIXTURES_BIG=1 tests/fixtures/make-fixtures.sh {} (scripts/test.sh does)",
            fixtures.display(),
            fixtures.display()
        );
    }
    let registry = Registry::start(Mode::Plain);
    registry.push_fixture(&fixtures.join("flask"), "demo/flask:latest");
    registry.push_fixture(&fixtures.join("busybox"), "demo/busybox:latest");
    let reg = registry.host();

    let session = match &user {
        None => Session::start(engine, &reg)?,
        Some(u) => Session::start_as(u, &reg)?,
    };
    let ui = session.connect().await?;
    let result = async {
        if user.is_some() {
            rootless_is_named(&ui).await?;
        }
        flow(&ui, &session, &registry, &reg).await
    }
    .await;
    if result.is_err() {
        let _ = ui.shot("failure").await;
        session.keep_logs();
    }
    println!("screenshots: {}", session.shots.display());
    ui.close().await;
    result
}

async fn flow(ui: &Ui, session: &Session, registry: &Registry, reg: &str) -> anyhow::Result<()> {
    // Dashboard: the engine answers.
    ui.wait_js(
        "document.querySelector('[data-testid=engine-status]')?.dataset.connected === 'yes'",
        60,
    )
    .await
    .context("the engine never came up")?;
    ui.shot("01-dashboard").await?;

    if matches!(session.engine, Engine::Embedded) {
        offline_pull(ui, reg).await?;
    }

    // Pull wizard: the registry's catalog is searched, and a hit fills the reference.
    // (Berth's engine; podman's search of a plain-HTTP registry is its own business.)
    ui.click("#nav-pull").await?;
    if matches!(session.engine, Engine::Embedded) {
        ui.type_into("[data-testid=pull-search]", &format!("{reg}/demo"))
            .await?;
        ui.click("[data-testid=pull-search-go]").await?;
        let hit = format!(
            "[data-testid=pull-search-results] tr[data-name='{reg}/demo/flask'] [data-action=choose]"
        );
        ui.wait_css_or_error(&hit, 30)
            .await
            .context("the search did not list demo/flask from the registry's catalog")?;
        ui.shot("02a-pull-search").await?;
        ui.click(&hit).await?;
        let chosen = ui.value("[data-testid=pull-reference]").await?;
        ensure!(
            chosen == format!("{reg}/demo/flask"),
            "the search filled in {chosen}"
        );
        ui.clear("[data-testid=pull-reference]").await?;
    }

    // Normalization and the command preview update as we type.
    ui.type_into("[data-testid=pull-reference]", &format!("{reg}/demo/flask"))
        .await?;
    let normalized = ui.text("[data-testid=pull-normalized]").await?;
    ensure!(
        normalized.contains(&format!("{reg}/demo/flask:latest")),
        "normalized: {normalized}"
    );
    let preview = ui.text("[data-testid=command-preview]").await?;
    ensure!(
        preview == format!("docker pull {reg}/demo/flask:latest"),
        "pull preview: {preview}"
    );
    ui.click("[data-testid=pull-start]").await?;
    ui.wait_css_or_error("[data-testid=pull-done]", 300)
        .await
        .context("pull")?;
    ui.shot("02-pull-wizard").await?;

    // Run wizard from the pulled image: port 5000 is pre-filled from EXPOSE.
    ui.click("[data-testid=pull-done] button.primary").await?;
    ui.wait_js(
        "document.querySelector('[data-testid=run-host-port]')?.value > 0",
        30,
    )
    .await
    .context("Run wizard did not pre-fill a port from EXPOSE")?;
    let container_port = ui.value("[data-testid=run-container-port]").await?;
    ensure!(
        container_port == "5000",
        "container port pre-filled as {container_port}"
    );
    let suggested: u16 = ui.value("[data-testid=run-host-port]").await?.parse()?;
    ensure!(suggested > 0, "no host port suggested");
    // Published on a port the kernel hands out now rather than the suggestion (5000 on a
    // fresh machine): a CI run once found 127.0.0.1:5000 dead for minutes for Berth and
    // podman alike (something else of the machine held it in a way a bind cannot see).
    let host_port = berth_tests::free_port();
    ui.clear("[data-testid=run-host-port]").await?;
    ui.type_into("[data-testid=run-host-port]", &host_port.to_string())
        .await?;
    ui.type_into("[data-testid=run-name]", "e2e-web").await?;
    // A named volume the terminal step writes into and the volume browser reads back.
    ui.click("[data-testid=run-add-volume]").await?;
    ui.type_into("[data-testid=run-volume]", "e2e-data:/data").await?;
    let preview = ui.text("[data-testid=command-preview]").await?;
    ensure!(
        preview.contains(&format!("--name e2e-web -p {host_port}:5000 -v e2e-data:/data")),
        "run preview: {preview}"
    );
    ui.shot("03-run-wizard").await?;
    ui.click("[data-testid=run-start]").await?;
    let row = "tr[data-name='e2e-web']";
    ui.wait_js(
        &format!("document.querySelector(\"{row} [data-testid=state]\")?.textContent === 'running'"),
        120,
    )
    .await
    .context("container e2e-web never showed as running")?;
    ui.shot("04-containers").await?;
    running_count_follows_events(ui, session, reg).await?;

    // The port button opens http://localhost:PORT through the opener plugin → $BROWSER.
    ui.click(&format!("{row} [data-testid=open-port]")).await?;
    let url = session.wait_browser_url(20).await?;
    ensure!(url == format!("http://localhost:{host_port}"), "opened {url}");
    let body = fetch_with_retry(host_port, 60).await?;
    ensure!(body.contains("Hello from Flask"), "page: {body}");

    // Logs: flask logged our request; search highlights it.
    ui.click(&format!("{row} [data-action=logs]")).await?;
    ui.wait_js(
        "Number(document.querySelector('[data-testid=log-status]')?.dataset.lines) > 0 && \
         document.querySelector('[data-testid=log-viewport]')?.textContent.includes('GET /')",
        60,
    )
    .await
    .context("the request never showed in the logs")?;
    ui.type_into("[data-testid=log-search]", "GET /").await?;
    ui.wait_js(
        "Number(document.querySelector('[data-testid=log-hits]')?.dataset.hits) >= 1 && \
         !!document.querySelector('[data-testid=log-viewport] mark')",
        20,
    )
    .await
    .context("log search found nothing")?;
    ui.click("[data-testid=log-timestamps]").await?;
    ui.shot("05-logs").await?;

    // Terminal: a shell in the container runs a command.
    ui.click("#nav-containers").await?;
    ui.click(&format!("{row} [data-action=terminal]")).await?;
    ui.wait_js(
        "document.querySelector('[data-testid=terminal-session]')?.dataset.live === 'yes'",
        30,
    )
    .await?;
    ui.wait_js(
        "document.querySelector('.xterm-rows')?.textContent.includes('#')",
        20,
    )
    .await
    .context("no shell prompt")?;
    ui.type_into(
        ".xterm-helper-textarea",
        "echo e2e-$((6*7)) | tee /data/hello.txt && mkdir -p /data/notes && cat /etc/hostname\n",
    )
    .await?;
    ui.wait_js(
        "document.querySelector('.xterm-rows')?.textContent.includes('e2e-42')",
        20,
    )
    .await
    .context("the terminal command's output never appeared")?;
    ui.shot("06-terminal").await?;

    // Inspect and Stats.
    ui.click("#nav-containers").await?;
    ui.click(&format!("{row} [data-action=inspect]")).await?;
    ui.wait_js(
        "document.querySelector('[data-testid=inspect-json]')?.textContent.includes('e2e-web')",
        20,
    )
    .await?;
    ui.shot("07-inspect").await?;
    ui.click("#nav-containers").await?;
    ui.click(&format!("{row} [data-action=stats]")).await?;
    ui.wait_js(
        "Number(document.querySelector('[data-testid=stats]')?.dataset.samples) >= 3",
        60,
    )
    .await
    .context("no stats samples")?;
    ui.shot("08-stats").await?;

    // Build wizard: a folder with a Dockerfile.
    let context = session.dir.path().join("build-ctx");
    std::fs::create_dir_all(&context)?;
    std::fs::write(
        context.join("Dockerfile"),
        format!("FROM {reg}/demo/busybox:latest\nRUN echo built-by-e2e > /built.txt\nCMD [\"cat\", \"/built.txt\"]\n"),
    )?;
    let built = format!("{reg}/demo/built:v1");
    ui.click("#nav-build").await?;
    ui.type_into("[data-testid=build-dir]", &context.display().to_string())
        .await?;
    ui.type_into("[data-testid=build-tag]", &built).await?;
    let preview = ui.text("[data-testid=command-preview]").await?;
    ensure!(
        preview == format!("docker build -t {built} {}", context.display()),
        "build preview: {preview}"
    );
    ui.click("[data-testid=build-start]").await?;
    ui.wait_css_or_error("[data-testid=build-done]", 600)
        .await
        .context("build")?;
    let output = ui.text("[data-testid=build-output]").await?;
    ensure!(
        output.contains("built-by-e2e") || output.contains("RUN"),
        "build output: {output}"
    );
    ui.shot("09-build-wizard").await?;

    // Push wizard: tag and push to the loopback registry.
    let source = built.clone();
    let target = format!("{reg}/demo/pushed:v1");
    ui.click("#nav-push").await?;
    ui.clear("[data-testid=push-source]").await?;
    ui.type_into("[data-testid=push-source]", &source).await?;
    ui.type_into("[data-testid=push-target]", &target).await?;
    let preview = ui.text("[data-testid=command-preview]").await?;
    ensure!(
        preview == format!("docker tag {source} {target}\ndocker push {target}"),
        "push preview: {preview}"
    );
    ui.click("[data-testid=push-start]").await?;
    ui.wait_css_or_error("[data-testid=push-done]", 300)
        .await
        .context("push")?;
    ui.shot("10-push-wizard").await?;
    let tags = berth_tests::http::get(registry.addr(), "/v2/demo/pushed/tags/list", &[])?;
    ensure!(
        tags.status() == 200,
        "registry tags/list answered {}",
        tags.status()
    );
    ensure!(
        tags.json()?["tags"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "v1")),
        "pushed tag v1 missing from the registry"
    );

    // Images, Volumes, Learn views with real data.
    ui.click("#nav-images").await?;
    ui.wait_js(
        &format!(
            "document.querySelector('[data-testid=images-table]')?.textContent.includes('{reg}/demo/pushed')"
        ),
        20,
    )
    .await?;
    ui.shot("11-images").await?;
    ui.click("#nav-volumes").await?;
    ui.type_into("[data-testid=volume-name]", "e2e-empty").await?;
    ui.click("[data-testid=volume-create]").await?;
    ui.wait_css("tr[data-name='e2e-empty']", 20).await?;
    ui.wait_js(
        "document.querySelector(\"tr[data-name='e2e-data']\")?.textContent.includes('e2e-web')",
        20,
    )
    .await
    .context("the Run wizard's volume e2e-data is not listed as used by e2e-web")?;
    ui.shot("12-volumes").await?;

    // Volume browser: the file the terminal wrote is there, with its size; folders open.
    ui.click("tr[data-name='e2e-data'] [data-action=browse]").await?;
    let file = "[data-testid=browser-table] tr[data-name='hello.txt'][data-kind=file]";
    ui.wait_css_or_error(file, 60)
        .await
        .context("the volume browser did not list hello.txt")?;
    let size = ui.text(&format!("{file} td:nth-child(3)")).await?;
    ensure!(size == "7 B", "hello.txt listed with size {size}");
    ui.click(&format!("{file} [data-action=preview]")).await?;
    ui.wait_js(
        "document.querySelector('[data-testid=file-preview-text]')?.textContent === 'e2e-42\\n'",
        30,
    )
    .await
    .context("the preview of hello.txt did not show what the terminal wrote")?;
    ui.shot("13-volume-browser").await?;
    // Download: the file lands in the Downloads folder (the session's, see e2e_support).
    ui.click(&format!("{file} [data-action=download]")).await?;
    let downloads = session.dir.path().join("downloads");
    let saved = downloads.join("hello.txt");
    // The file, whole, and nothing else (the partial download is gone).
    let listing = || -> Vec<String> {
        std::fs::read_dir(&downloads)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut content = String::new();
    for _ in 0..80 {
        content = std::fs::read_to_string(&saved).unwrap_or_default();
        if !content.is_empty() && listing() == ["hello.txt"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    ensure!(
        content == "e2e-42\n" && listing() == ["hello.txt"],
        "downloaded {} holds {content:?}; the folder holds {:?}",
        saved.display(),
        listing()
    );
    ui.click("[data-testid=browser-table] tr[data-name='notes'][data-kind=dir] [data-action=open]")
        .await?;
    ui.wait_js(
        "document.querySelector('[data-testid=volume-browser]')?.dataset.path === '/notes' && \
         document.querySelector('[data-testid=volume-browser]')?.dataset.loading === 'no' && \
         !!document.querySelector('[data-testid=browser-table]')?.textContent.includes('empty')",
        30,
    )
    .await
    .context("opening the empty folder notes did not show it")?;
    ui.click("[data-testid=browser-up]").await?;
    ui.wait_css(file, 30)
        .await
        .context("Up did not go back to the volume's root")?;
    ensure!(
        session.container_count()? == 1,
        "the volume browser left a helper container behind"
    );
    ui.click("[data-testid=browser-close]").await?;
    ui.click("#nav-learn").await?;
    ui.wait_js(
        "document.querySelectorAll('[data-testid=learn-steps] li[data-done=yes]').length >= 3",
        20,
    )
    .await
    .context("Learn did not tick pull / run / open")?;
    ui.shot("14-learn").await?;

    // Settings → The docker command: this machine has docker's own CLI (the tests install
    // it), so Berth says so and offers nothing to replace it.
    ui.click("#nav-settings").await?;
    ui.wait_js(
        "document.querySelector('[data-testid=docker-command-state]')?.dataset.state === 'other'",
        20,
    )
    .await
    .context("Settings did not say that docker is another program here")?;
    let said = ui.text("[data-testid=docker-command-state]").await?;
    ensure!(
        said.contains("/docker") && said.contains("stays"),
        "docker command: {said}"
    );
    ensure!(
        ui.wait_css("[data-testid=docker-command-install]", 1)
            .await
            .is_err(),
        "Settings offered to replace another docker"
    );
    ui.shot("14b-settings-docker").await?;

    // Compose: a folder's project run from the window, listed by its labels, its services'
    // logs interleaved in their own colours, restarted, and brought down.
    if matches!(session.engine, Engine::Embedded) {
        compose_project(ui, session, reg).await?;
    }

    // Stop, then remove with confirmation.
    ui.click("#nav-containers").await?;
    ui.click(&format!("{row} [data-action=stop]")).await?;
    ui.wait_js(
        &format!("document.querySelector(\"{row} [data-testid=state]\")?.textContent === 'exited'"),
        60,
    )
    .await
    .context("the container did not stop")?;
    ui.click(&format!("{row} [data-action=remove]")).await?;
    ui.click("[data-testid=confirm-yes]").await?;
    ui.wait_js(&format!("!document.querySelector(\"{row}\")"), 60)
        .await
        .context("the container was not removed")?;
    ui.click("#nav-dashboard").await?;
    ui.wait_js(
        "!!document.querySelector('[data-testid=disk-usage] tbody tr')",
        20,
    )
    .await?;
    ui.shot("15-dashboard-after").await?;
    ensure!(
        session.container_count()? == 0,
        "the engine still lists containers after removing"
    );
    Ok(())
}

/// The Compose view on a two-service project in a folder (busybox from the test registry:
/// a web server and a worker that reaches it by name).
async fn compose_project(ui: &Ui, session: &Session, reg: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;

    use bollard::query_parameters::{InspectContainerOptions, ListContainersOptions};

    let project = format!("e2eproj{}", std::process::id());
    let parent = tempfile::Builder::new().prefix("berth-e2e-compose").tempdir()?;
    let dir = parent.path().join(&project);
    std::fs::create_dir_all(&dir)?;
    // The window may run as another user (the rootless flow): it reads the folder.
    for d in [parent.path(), dir.as_path()] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))?;
    }
    std::fs::write(
        dir.join("compose.yaml"),
        format!(
            r#"services:
  web:
    image: {reg}/demo/busybox:latest
    command: ["sh", "-c", "echo web says hello; exec httpd -f -p 8000 -h /etc"]
  worker:
    image: {reg}/demo/busybox:latest
    depends_on: [web]
    command: ["sh", "-c", "echo worker says hello; while true; do wget -q -O /dev/null http://web:8000/hostname && echo worker reached web; sleep 1; done"]
"#
        ),
    )?;
    ui.click("#nav-compose").await?;
    ui.type_into("[data-testid=compose-folder-path]", &dir.display().to_string())
        .await?;
    ui.click("[data-testid=compose-folder-open]").await?;
    ui.wait_css_or_error(
        &format!("[data-testid=compose-found][data-project='{project}']"),
        30,
    )
    .await
    .context("the Compose view did not read the folder's compose file")?;
    let command = ui.text("[data-testid=compose-command]").await?;
    ensure!(
        command == format!("cd {} && docker compose up -d", dir.display()),
        "the equivalent command: {command}"
    );
    let found = ui.text("[data-testid=compose-found]").await?;
    ensure!(
        found.contains("web") && found.contains("worker"),
        "found: {found}"
    );
    ui.shot("15-compose-folder").await?;

    ui.click("[data-testid=compose-run]").await?;
    let row = format!("tr[data-project='{project}']");
    ui.wait_js(
        &format!("document.querySelector(\"{row}\")?.dataset.running === '2'"),
        120,
    )
    .await
    .context("the project never showed two running services")?;
    let docker = session.engine_api()?;
    let listed = || async {
        let filters = std::collections::HashMap::from([(
            "label".to_string(),
            vec![format!("com.docker.compose.project={project}")],
        )]);
        let mut names: Vec<String> = docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters),
                ..Default::default()
            }))
            .await?
            .into_iter()
            .flat_map(|c| c.names.unwrap_or_default())
            .map(|n| n.trim_start_matches('/').to_string())
            .collect();
        names.sort();
        anyhow::Ok(names)
    };
    ensure!(
        listed().await? == [format!("{project}-web-1"), format!("{project}-worker-1")],
        "the engine's containers of the project: {:?}",
        listed().await?
    );

    // Logs: both services, interleaved, a colour each; the worker reached web by name.
    ui.click(&format!("{row} [data-action=logs]")).await?;
    ui.wait_js(
        "(() => { const t = document.querySelector('[data-testid=compose-log-lines]')?.textContent ?? ''; \
           return t.includes('web says hello') && t.includes('worker says hello') && t.includes('worker reached web'); })()",
        60,
    )
    .await
    .context("the project's logs did not show both services")?;
    let colours = ui
        .eval_string(
            "return [...new Set([...document.querySelectorAll('[data-testid=compose-log-lines] [data-service]')]\
               .map((l) => l.dataset.service + '=' + l.querySelector('.svc').dataset.colour))].sort().join(' ')",
        )
        .await?;
    let pairs: Vec<&str> = colours.split_whitespace().collect();
    ensure!(
        pairs.len() == 2 && pairs[0].starts_with("web=") && pairs[1].starts_with("worker="),
        "services and colours: {colours}"
    );
    ensure!(
        pairs[0]["web=".len()..] != pairs[1]["worker=".len()..],
        "one colour for both services: {colours}"
    );
    ui.shot("16-compose-logs").await?;

    // Restart: both containers start again.
    let started = |name: String| {
        let docker = docker.clone();
        async move {
            let c = docker
                .inspect_container(&name, None::<InspectContainerOptions>)
                .await?;
            anyhow::Ok(c.state.and_then(|s| s.started_at).unwrap_or_default())
        }
    };
    let web = format!("{project}-web-1");
    let before = started(web.clone()).await?;
    ui.click(&format!("{row} [data-action=restart]")).await?;
    ui.wait_js(
        &format!(
            "document.querySelector(\"{row} [data-testid=compose-state]\")?.textContent === 'running' && \
             document.querySelector(\"{row}\")?.dataset.running === '2'"
        ),
        90,
    )
    .await
    .context("the project did not come back running after Restart")?;
    ensure!(started(web).await? != before, "Restart did not restart web");

    // Down: no container, no network of the project is left.
    ui.click(&format!("{row} [data-action=down]")).await?;
    ui.wait_js(
        &format!(
            "!document.querySelector(\"{row}\") && \
             document.querySelector('[data-testid=compose-projects]')?.dataset.busy === '0'"
        ),
        90,
    )
    .await
    .context("the project stayed listed after Down")?;
    ensure!(
        listed().await?.is_empty(),
        "containers left: {:?}",
        listed().await?
    );
    let nets = docker
        .list_networks(None::<bollard::query_parameters::ListNetworksOptions>)
        .await?;
    ensure!(
        !nets
            .iter()
            .any(|n| n.name.as_deref() == Some(&format!("{project}_default"))),
        "the project's network stayed"
    );
    ui.shot("17-compose-down").await?;
    Ok(())
}

/// An ordinary user's window names its engine: the sidebar and the Dashboard say
/// "Built-in, rootless".
async fn rootless_is_named(ui: &Ui) -> anyhow::Result<()> {
    ui.wait_js(
        "document.querySelector('[data-testid=engine-status]')?.dataset.connected === 'yes'",
        90,
    )
    .await
    .context("the rootless engine never came up")?;
    let sidebar = ui.text("[data-testid=engine-label]").await?;
    ensure!(
        sidebar.contains("rootless"),
        "the sidebar names the engine {sidebar:?}"
    );
    let dashboard = ui.text("[data-testid=dashboard-engine-label]").await?;
    ensure!(
        dashboard.starts_with("Built-in, rootless"),
        "the Dashboard names the engine {dashboard:?}"
    );
    Ok(())
}

/// GET / on the published port until the app inside answers (Flask takes a moment).
/// The first error a student sees offline: a Docker Hub image with Docker Hub out of
/// reach. Plain words and a link to Settings; the resolver's words only in the details;
/// gone once the reference is edited. Then a mirror set in Settings (the loopback
/// registry) makes the same pull work, without restarting the engine.
async fn offline_pull(ui: &Ui, reg: &str) -> anyhow::Result<()> {
    let input = "[data-testid=pull-reference]";
    let error_box = "main [data-testid=error-box]";
    ui.click("#nav-pull").await?;
    ui.type_into(input, "demo/flask").await?;
    ui.click("[data-testid=pull-start]").await?;
    ui.wait_css(error_box, 60)
        .await
        .context("no error for an unreachable Docker Hub")?;
    let message = ui.text(&format!("{error_box} .msg")).await?;
    ensure!(
        message == "Docker Hub can't be reached: its address could not be looked up.",
        "message: {message}"
    );
    let next = ui.text("main [data-testid=error-next]").await?;
    ensure!(
        next.starts_with("Check the internet connection, or set a registry mirror in Settings."),
        "next step: {next}"
    );
    let code = ui.attr(error_box, "data-code").await?;
    ensure!(code == "registry_unreachable", "code: {code}");
    ensure!(
        ui.text("main [data-testid=error-action]").await? == "Open Settings",
        "no Settings link"
    );
    ui.click("main [data-testid=error-details-toggle]").await?;
    let details = ui.text("main [data-testid=error-details]").await?;
    ensure!(
        details.to_lowercase().contains("lookup") && !message.to_lowercase().contains("lookup"),
        "the resolver's words belong in the details: {details}"
    );
    ui.shot("02a-pull-offline").await?;

    // Editing the reference clears the error that was about the old one.
    ui.type_into(input, "x").await?;
    ui.wait_js(&format!("!document.querySelector(\"{error_box}\")"), 5)
        .await
        .context("the error stayed after the reference was edited")?;

    // Same pull again, then follow the link and set the loopback registry as a mirror.
    ui.clear(input).await?;
    ui.type_into(input, "demo/flask").await?;
    ui.click("[data-testid=pull-start]").await?;
    ui.wait_css(error_box, 60)
        .await
        .context("no error the second time")?;
    ui.click("main [data-testid=error-action]").await?;
    ui.wait_css("[data-testid=settings-mirrors]", 10)
        .await
        .context("the link did not open Settings")?;
    ui.type_into("[data-testid=settings-mirrors]", &format!("http://{reg}"))
        .await?;
    ui.click("[data-testid=settings-registries-save]").await?;
    ui.wait_css_or_error("[data-testid=settings-registries-saved]", 10)
        .await
        .context("saving the mirror")?;
    ui.shot("02b-settings-mirror").await?;
    ui.click("#nav-pull").await?;
    ui.type_into(input, "demo/flask").await?;
    ui.click("[data-testid=pull-start]").await?;
    ui.wait_css_or_error("[data-testid=pull-done]", 300)
        .await
        .context("pull through the mirror set in Settings")?;
    // Leave the wizard so the lecture flow finds it fresh.
    ui.click("#nav-dashboard").await?;
    Ok(())
}

/// The sidebar's "N running" follows the engine's events: a container started and killed
/// beside the UI (through the Engine API) shows in the count at once — far sooner than
/// the window's one slow safety refresh (30 s) could explain.
async fn running_count_follows_events(ui: &Ui, session: &Session, reg: &str) -> anyhow::Result<()> {
    use bollard::query_parameters::{
        CreateContainerOptions, CreateImageOptions, KillContainerOptions, RemoveContainerOptions,
    };
    use futures_util::TryStreamExt;

    const PROMPT: Duration = Duration::from_secs(2);
    let docker = session.engine_api()?;
    let image = format!("{reg}/demo/busybox:latest");
    docker
        .create_image(
            Some(CreateImageOptions {
                from_image: Some(image.clone()),
                ..Default::default()
            }),
            None,
            None,
        )
        .try_collect::<Vec<_>>()
        .await
        .context("pulling busybox beside the UI")?;
    let count = "[data-testid=running-count]";
    ui.wait_css(count, 30).await?;
    let body = bollard::models::ContainerCreateBody {
        image: Some(image),
        cmd: Some(vec!["sleep".into(), "600".into()]),
        ..Default::default()
    };
    let id = docker
        .create_container(
            Some(CreateContainerOptions {
                name: Some("e2e-count".into()),
                ..Default::default()
            }),
            body,
        )
        .await?
        .id;
    // The engine's own count, and the moment it shows `n`: the window must follow from
    // there (the engine's kill can take a while on podman; that is not the window's).
    let engine_reaches = |n: i64| {
        let docker = docker.clone();
        async move {
            for _ in 0..300 {
                if docker.info().await?.containers_running == Some(n) {
                    return Ok(std::time::Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            anyhow::bail!("the engine never counted {n} running containers")
        }
    };
    let before = docker.info().await?.containers_running.unwrap_or(0);
    let shown = |n: i64| format!("document.querySelector('{count}')?.dataset.running === '{n}'");

    docker
        .start_container(&id, None::<bollard::query_parameters::StartContainerOptions>)
        .await?;
    let started = engine_reaches(before + 1).await?;
    ui.wait_js(&shown(before + 1), PROMPT.as_secs())
        .await
        .context("the sidebar's running count did not follow a container start")?;
    let up = started.elapsed();

    docker.kill_container(&id, None::<KillContainerOptions>).await?;
    let died = engine_reaches(before).await?;
    ui.wait_js(&shown(before), PROMPT.as_secs())
        .await
        .context("the sidebar's running count did not follow a container's death")?;
    let down = died.elapsed();
    println!("running count: +1 after {up:?}, -1 after {down:?}");
    docker
        .remove_container(
            &id,
            Some(RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        )
        .await?;
    Ok(())
}

async fn fetch_with_retry(port: u16, secs: u64) -> anyhow::Result<String> {
    let addr = berth_tests::loopback(port);
    let mut last = String::new();
    for _ in 0..secs * 4 {
        match berth_tests::http::get(addr, "/", &[]) {
            Ok(r) if r.status() == 200 => return Ok(String::from_utf8_lossy(&r.body).into_owned()),
            Ok(r) => last = format!("HTTP {}", r.status()),
            Err(e) => last = format!("{e:#}"),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // What the machine had on that port, for whoever reads the failure.
    let sh = |cmd: &str| {
        std::process::Command::new("sh")
            .args(["-c", cmd])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    let listening = sh(&format!("ss -ltnp 'sport = :{port}'"));
    let rules = sh(&format!("nft list ruleset 2>/dev/null | grep -n 'dport {port}'"));
    anyhow::bail!(
        "http://localhost:{port}/ never answered 200 (last: {last}); listening: {listening}; nft rules naming it: {rules}"
    )
}
