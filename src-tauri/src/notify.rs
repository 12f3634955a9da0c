//! Desktop notifications for long operations (pull, build, push) that end while the window
//! is hidden: the freedesktop Notifications service on the session bus, called with zbus.

use std::collections::HashMap;

/// The notification an operation's end deserves, if any: only the long ones a user waits
/// for, and only when the window cannot show the result itself.
pub fn for_operation(op: &str, window_shown: bool, error: Option<&str>) -> Option<(String, String)> {
    if window_shown {
        return None;
    }
    let what = match op.split('-').next()? {
        "pull" => "Pull",
        "build" => "Build",
        "push" => "Push",
        _ => return None,
    };
    Some(match error {
        None => (
            format!("{what} finished"),
            "Open Berth to see the result.".to_string(),
        ),
        Some(message) => (format!("{what} failed"), message.to_string()),
    })
}

/// Show a notification; returns the id the notification server gave it.
pub fn send(summary: &str, body: &str) -> Result<u32, zbus::Error> {
    let bus = zbus::blocking::Connection::session()?;
    let hints: HashMap<&str, zbus::zvariant::Value> = HashMap::new();
    let reply = bus.call_method(
        Some("org.freedesktop.Notifications"),
        "/org/freedesktop/Notifications",
        Some("org.freedesktop.Notifications"),
        "Notify",
        &(
            "Berth",
            0u32,
            "berth",
            summary,
            body,
            Vec::<&str>::new(),
            hints,
            -1i32,
        ),
    )?;
    reply.body().deserialize::<u32>()
}

#[cfg(test)]
mod tests {
    use super::for_operation;

    #[test]
    fn only_long_operations_notify_and_only_when_hidden() {
        assert_eq!(for_operation("pull-3", true, None), None);
        assert_eq!(for_operation("logs-1", false, None), None);
        assert_eq!(for_operation("stats-1", false, None), None);
        assert_eq!(
            for_operation("build-7", false, None),
            Some(("Build finished".into(), "Open Berth to see the result.".into()))
        );
        assert_eq!(
            for_operation("push-2", false, Some("The registry refused the login.")),
            Some(("Push failed".into(), "The registry refused the login.".into()))
        );
    }
}
