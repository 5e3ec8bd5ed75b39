//! The four faults of a three-node cluster, each while at least 5,000 jobs flow: the
//! publisher's node killed, the leaders' node killed, a killed node rejoining, and a node cut
//! off from the others and put back. Every confirmed job is handled in each.

use super::{ClusterApp, JOBS};

#[tokio::test]
async fn killing_the_node_the_publisher_is_connected_to_loses_no_confirmed_job() {
    let app = ClusterApp::start("cl-pub").await;
    let report = app
        .flow_through("the publisher's node killed", async {
            let node = app.publisher_node().await;
            app.cluster.kill(node).await.unwrap();
        })
        .await;
    assert!(report.jobs as u64 >= JOBS, "{report:?}");
}

#[tokio::test]
async fn killing_the_node_holding_the_queue_leader_loses_no_confirmed_job() {
    let app = ClusterApp::start("cl-lead").await;
    let report = app
        .flow_through("the queue leader's node killed", async {
            let leader = app.leader_node(0).await.unwrap();
            app.cluster.kill(leader).await.unwrap();
            // A new leader on a surviving node: the queue goes on without the dead one.
            let asked = (leader + 1) % support::cluster::NODES;
            support::wait_until(super::DRAIN, "a new leader", || async {
                app.leader_node(asked).await.is_ok_and(|now| now != leader)
            })
            .await
            .unwrap();
        })
        .await;
    assert!(report.jobs as u64 >= JOBS, "{report:?}");
}

#[tokio::test]
async fn a_killed_node_that_comes_back_rejoins_while_jobs_flow() {
    let app = ClusterApp::start("cl-back").await;
    let report = app
        .flow_through("a killed node restarted and rejoined", async {
            let leader = app.leader_node(0).await.unwrap();
            app.cluster.kill(leader).await.unwrap();
            app.cluster.restart(leader).await.unwrap();
        })
        .await;
    assert!(report.jobs as u64 >= JOBS, "{report:?}");
    let back = app.cluster.nodes[0]
        .management
        .running_nodes()
        .await
        .unwrap();
    assert_eq!(back.len(), support::cluster::NODES, "{back:?}");
}

#[tokio::test]
async fn a_node_cut_off_from_the_others_and_put_back_loses_no_confirmed_job() {
    let app = ClusterApp::start("cl-cut").await;
    let report = app
        .flow_through("the leader's node cut off, then put back", async {
            let leader = app.leader_node(0).await.unwrap();
            let start = tokio::time::Instant::now();
            app.cluster.disconnect(leader).await.unwrap();
            let asked = (leader + 1) % support::cluster::NODES;
            support::wait_until(super::DRAIN, "a leader on the connected side", || async {
                app.leader_node(asked).await.is_ok_and(|now| now != leader)
            })
            .await
            .unwrap();
            eprintln!("cut: new leader after {:?}", start.elapsed());
            app.cluster.reconnect(leader).await.unwrap();
            eprintln!("cut: whole again after {:?}", start.elapsed());
        })
        .await;
    assert!(report.jobs as u64 >= JOBS, "{report:?}");
}
