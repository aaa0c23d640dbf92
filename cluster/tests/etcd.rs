//! Ownership against a real etcd (Debian's 3.4, as .ci/run installs it),
//! one member on loopback per test.
#![allow(clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cluster::Ownership;

struct Etcd {
    child: Child,
    endpoint: String,
    _dir: tempfile::TempDir,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn etcd() -> Etcd {
    let dir = tempfile::tempdir().unwrap();
    let (client, peer) = (free_port(), free_port());
    let endpoint = format!("http://127.0.0.1:{client}");
    let child = Command::new("etcd")
        .args(["--name", "e1", "--data-dir", dir.path().join("data").to_str().unwrap()])
        .args(["--listen-client-urls", &endpoint, "--advertise-client-urls", &endpoint])
        .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
        .args(["--initial-advertise-peer-urls", &format!("http://127.0.0.1:{peer}")])
        .args(["--initial-cluster", &format!("e1=http://127.0.0.1:{peer}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("etcd (Debian's etcd-server; .ci/run installs it)");
    Etcd { child, endpoint, _dir: dir }
}

async fn node(e: &Etcd, name: &str) -> Ownership {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match Ownership::start(std::slice::from_ref(&e.endpoint), name, "127.0.0.1:1", Duration::from_secs(2)).await {
            Ok(o) => return o,
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(err) => panic!("{err}"),
        }
    }
}

/// One owner at a time; when it dies (no more keep-alives) it stops being
/// live by its own deadline before etcd lets another node take the tenant,
/// and the next epoch is higher.
#[tokio::test]
async fn a_dead_owner_stops_serving_before_another_takes_its_tenant_with_a_higher_epoch() {
    let e = etcd();
    let mut a = node(&e, "a").await;
    let mut b = node(&e, "b").await;
    let first = a.acquire("ten_x").await.unwrap().expect("a takes the free tenant");
    assert_eq!(b.acquire("ten_x").await.unwrap(), None, "two owners");
    let owners = b.owners().await.unwrap();
    assert_eq!(owners.len(), 1);
    assert_eq!((owners[0].node.as_str(), owners[0].epoch), ("a", first));
    assert!(a.liveness().live());

    // `a` dies: its keep-alives stop (the task is aborted with it).
    let a_live = a.liveness();
    let died = Instant::now();
    drop(a);
    let mut stopped_serving = None;
    let second = loop {
        if stopped_serving.is_none() && !a_live.live() {
            stopped_serving = Some(died.elapsed());
        }
        if let Some(epoch) = b.acquire("ten_x").await.unwrap() {
            break epoch;
        }
        assert!(died.elapsed() < Duration::from_secs(10), "the tenant was never freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let taken = died.elapsed();
    let stopped = stopped_serving.expect("the dead owner was still live when the tenant was taken");
    eprintln!("owner stopped serving after {stopped:?}; taken after {taken:?}; epoch {first} -> {second}");
    assert!(stopped < taken, "the old owner's deadline must pass before anyone can take over");
    assert!(second > first, "epochs only rise");

    // A release only deletes the key this node created.
    assert!(!b.release("ten_x", first).await.unwrap());
    assert!(b.release("ten_x", second).await.unwrap());
    assert!(b.owners().await.unwrap().is_empty());
}

/// etcd away for longer than the TTL (here: paused): the node stops being
/// live at its deadline, knows its lease is lost once a TTL passed without
/// an answer, and with a new lease can own again; its old key is gone.
#[tokio::test]
async fn a_node_cut_off_from_etcd_past_its_ttl_knows_its_lease_is_lost_and_recovers() {
    let e = etcd();
    let mut a = node(&e, "a").await;
    let first = a.acquire("ten_y").await.unwrap().expect("a takes the free tenant");
    let pid = e.child.id().to_string();
    assert!(Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
    let cut = Instant::now();
    while !a.lost() {
        assert!(cut.elapsed() < Duration::from_secs(10), "the lease was never given up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let noticed = cut.elapsed();
    assert!(!a.liveness().live());
    assert!(Command::new("kill").args(["-CONT", &pid]).status().unwrap().success());
    // etcd expires the old lease (a new leader term refreshes leases first, so allow a while).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if a.renew().await.is_ok() && a.owners().await.map(|o| o.is_empty()).unwrap_or(false) {
            break;
        }
        assert!(Instant::now() < deadline, "the old owner key never went");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(a.liveness().live());
    let second = a.acquire("ten_y").await.unwrap().expect("the node owns again with its new lease");
    eprintln!("lease given up {noticed:?} after etcd went away; epoch {first} -> {second}");
    assert!(noticed >= Duration::from_secs(2) && second > first);
}
