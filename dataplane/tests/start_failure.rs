//! A start that fails after it launched some workers stops and joins them before it returns the error:
//! nothing of the dataplane runs on (under `rte_eal_cleanup`, next). The failure is real: the second
//! worker lcore is busy with a function of the test's own, so the launch of the second worker is refused
//! after the first one runs. Three lcores on two CPUs (`--lcores`), two `net_null` ports, `--no-huge`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dataplane::{Dataplane, DataplaneError, DataplaneOptions};
use dpdk::{DpdkError, Eal, MainLcore, Port};

struct ReleaseOnDrop(Arc<AtomicBool>);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

#[test]
fn a_failed_start_stops_and_joins_the_workers_it_launched() {
    // SAFETY: geteuid has no precondition.
    assert_eq!(unsafe { libc::geteuid() }, 0, "DPDK tests need root (/var/run/dpdk)");
    let prefix = format!("dfstartfail{}", std::process::id());
    let eal = Eal::init(
        "start_failure",
        &[
            "--lcores",
            "0@0,1@1,2@1",
            "--no-huge",
            "-m",
            "512",
            "--no-pci",
            "--file-prefix",
            &prefix,
            "--log-level",
            "warning",
            "--vdev=net_null0",
            "--vdev=net_null1",
        ],
    )
    .expect("EAL");
    let main = MainLcore::here(&eal).expect("the EAL's own thread is the main lcore");
    assert_eq!(eal.worker_lcores(), vec![1, 2]);

    // Lcore 2 is taken: the dataplane's worker for it cannot be launched.
    let release = Arc::new(AtomicBool::new(false));
    let busy = {
        let release = release.clone();
        main.launch(2, move || {
            while !release.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(1));
            }
            0
        })
        .expect("lcore 2 taken by the test")
    };
    // Dropped before `busy` (whose drop waits for its function), should an assertion fail.
    let _release = ReleaseOnDrop(release.clone());

    // Patch mode over two multi-queue ports: both workers have queues, lcore 1's is launched first.
    let opts = DataplaneOptions { latency: false, ..DataplaneOptions::default() };
    let err = Dataplane::start(&main, &opts, |_| unreachable!("patch mode has no tables")).err().expect("start fails");
    assert!(matches!(err, DataplaneError::Dpdk(DpdkError::LcoreBusy(2))), "{err}");

    // Before the error came back, the worker launched on lcore 1 was stopped and has returned ...
    assert!(!main.is_running(1).unwrap(), "the worker on lcore 1 still runs after start failed");
    // ... having dropped its queue handles: the ports were closed, no handle keeps them owned.
    for name in ["net_null0", "net_null1"] {
        let again = Port::open(&eal, name);
        assert!(!matches!(again, Err(DpdkError::PortInUse { .. })), "a worker still holds {name}'s queues");
    }
    // The lcore is free for anyone.
    assert_eq!(main.launch(1, || 5).unwrap().join(), 5);
    assert!(main.is_running(2).unwrap(), "the test's own function was left alone");

    release.store(true, Ordering::Release);
    assert_eq!(busy.join(), 0);
    // SAFETY: every launched function was joined, the dataplane dropped its ports and pool; nothing of DPDK
    // is used after.
    unsafe { eal.cleanup() };
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
}
