/// Where in a Redis Cluster a connection or subscription is "homed": a hash slot, and the shared topology that
/// says which primary serves it.
///
/// A routed connection talks to the slot's current owner, follows `MOVED` and `ASK` replies, and after a failure
/// refreshes the topology and reconnects to whichever node owns the slot then (a replica promoted by a failover).
/// Its commands should all be for keys of that one slot (or keyless), as one shard's pipelines are.
package struct ClusterRoute: Sendable {
    package let topology: ClusterTopology
    /// The home slot, in `0..<HashSlot.count`.
    package let slot: Int

    package init(topology: ClusterTopology, slot: Int) {
        self.topology = topology
        self.slot = slot
    }

    /// A route homed on the slot of `key`.
    package init(topology: ClusterTopology, key: String) {
        self.init(topology: topology, slot: HashSlot.of(key))
    }

    /// The endpoint to reach the slot's current owner with: `configured`'s credentials and database at the
    /// owner's address.
    func target(keeping configured: RedisEndpoint) -> RedisEndpoint {
        var target = configured
        target.address = topology.owner(ofSlot: slot).address
        return target
    }
}
