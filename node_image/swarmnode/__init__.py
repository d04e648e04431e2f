"""swarmnode: what runs inside the containers (Raft and SWIM cores, agent runtime, Toxiproxy-compatible server)."""
