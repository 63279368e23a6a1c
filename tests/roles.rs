//! Every role stops cleanly: `api`, `all-in-one` and `node`, over the embedded DB and over etcd, exit
//! with status 0 on SIGINT and on SIGTERM, within 5 s. A `--config` file given to a role that does not
//! read one is refused, not ignored.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::cloud::*;
use common::*;

#[test]
fn every_role_stops_with_status_0_on_sigint_and_sigterm_with_each_db() {
    require_root();
    let mut etcd = Etcd::new("roles");
    etcd.start();
    let base = std::env::temp_dir().join(format!("dft-roles-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    for role in ["api", "all-in-one", "node"] {
        for db in ["embedded", "etcd"] {
            for (sig, name) in [(libc::SIGINT, "SIGINT"), (libc::SIGTERM, "SIGTERM")] {
                let case = format!("{role} over {db}, {name}");
                let mut world = World::default();
                let dir = base.join(format!("{role}-{db}-{name}"));
                world.dirs.push(dir.clone());
                let mut args: Vec<String> = vec![role.into()];
                match db {
                    "embedded" => args.extend(["--data-dir".into(), dir.join("db").display().to_string()]),
                    _ => args.extend(["--etcd".into(), etcd.url.clone(), "--etcd-prefix".into(), format!("r-{role}")]),
                }
                let ready = if role == "api" {
                    args.extend(["--listen".into(), format!("127.0.0.1:{}", free_port())]);
                    "dragonflow: Neutron API"
                } else {
                    args.extend(["--chassis".into(), "roles".into(), "--listen".into()]);
                    args.push(if role == "all-in-one" { format!("127.0.0.1:{}", free_port()) } else { "none".into() });
                    let prefix = format!("dft-roles-{}", std::process::id());
                    world.prefixes.push(prefix.clone());
                    args.push("--".into());
                    args.extend(eal_args(&prefix));
                    "dragonflow: node"
                };
                spawn_until(&mut world, &args, ready);
                let child = world.children.last_mut().unwrap();
                // SAFETY: kill(2) on our own child, not reaped yet.
                unsafe { libc::kill(child.id() as i32, sig) };
                let t = Instant::now();
                let status = loop {
                    if let Some(s) = child.try_wait().unwrap() {
                        break s;
                    }
                    assert!(t.elapsed() < Duration::from_secs(5), "{case}: still running 5 s after the signal");
                    std::thread::sleep(Duration::from_millis(20));
                };
                assert!(status.success(), "{case}: exit status {status}");
                eprintln!("{case}: exit 0 after {:?}", t.elapsed());
            }
        }
    }
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn a_config_file_is_refused_by_the_roles_that_take_flags() {
    for role in ["api", "all-in-one", "node"] {
        let out = Command::new(bin()).args(["--config", "/nonexistent.toml", role]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{role}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--config") && err.contains(role), "{role}: {err}");
    }
}
