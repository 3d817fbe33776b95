/**
 * The driver protocol schema (proto3). Field names are snake_case here; protobufjs exposes them in
 * camelCase, which is exactly the TypeScript field names of the update stream, so conversion is generic.
 * `proto/margay_dataplane.proto` in the package is this text (a unit test keeps them equal), for vendors
 * generating code in other languages.
 */
export const DATAPLANE_PROTO = `// Margay dataplane driver protocol, version 1.
// Framing: each message is an Envelope, preceded by its length as a 4-byte big-endian unsigned integer.
// The host sends requests (hello, apply, snapshot, close); the driver answers each with the same id.
syntax = "proto3";

package margay.dataplane.v1;

// ---- route side ----

message RouteUpdate {
  string dst = 1;
  string type = 2;            // remote-block | local-block | local-workload
  repeated string nodes = 3;  // remote-block: hosting nodes (ECMP when several)
  optional string ifname = 4; // local-workload: host-side interface
}
message RouteRemove { string dst = 1; }
message VtepUpdate {
  string node = 1;
  string tunnel_address = 2;
  string mac = 3;
  string underlay_address = 4;
}
message VtepRemove { string node = 1; }
message PoolUpdate {
  string cidr = 1;
  string encapsulation = 2; // none | vxlan | ipip
  bool cross_subnet = 3;
  bool nat_outgoing = 4;
}
message PoolRemove { string cidr = 1; }
message HostUpdate {
  string node = 1;
  repeated string addresses = 2;
}
message HostRemove { string node = 1; }
message InSync {}

// ---- policy side (from @margay/policy) ----

message IpSetUpdate {
  string id = 1;
  string type = 2; // ip | ip-and-port | net
  repeated string members = 3;
}
message IpSetDeltaUpdate {
  string id = 1;
  repeated string added = 2;
  repeated string removed = 3;
}
message IpSetRemove { string id = 1; }
message PortRange {
  uint32 first = 1;
  uint32 last = 2;
}
message IcmpMatch {
  uint32 type = 1;
  optional uint32 code = 2;
}
message RenderedRule {
  string action = 1; // allow | deny | log | pass
  uint32 index = 2;
  string rule_id = 3;
  optional uint32 ip_version = 4;
  optional uint32 protocol = 5;
  optional uint32 not_protocol = 6;
  repeated string src_nets = 7;
  repeated string not_src_nets = 8;
  repeated string src_ip_set_ids = 9;
  repeated string not_src_ip_set_ids = 10;
  repeated PortRange src_ports = 11;
  repeated PortRange not_src_ports = 12;
  repeated string src_named_port_ip_set_ids = 13;
  repeated string not_src_named_port_ip_set_ids = 14;
  repeated string dst_nets = 15;
  repeated string not_dst_nets = 16;
  repeated string dst_ip_set_ids = 17;
  repeated string not_dst_ip_set_ids = 18;
  repeated PortRange dst_ports = 19;
  repeated PortRange not_dst_ports = 20;
  repeated string dst_named_port_ip_set_ids = 21;
  repeated string not_dst_named_port_ip_set_ids = 22;
  optional IcmpMatch icmp = 23;
  optional IcmpMatch not_icmp = 24;
}
message PolicyFlags {
  bool untracked = 1;
  bool pre_dnat = 2;
  bool apply_on_forward = 3;
}
message ActivePolicyUpdate {
  string id = 1;
  string tier = 2;
  string name = 3;
  optional string namespace = 4;
  repeated RenderedRule inbound = 5;
  repeated RenderedRule outbound = 6;
  PolicyFlags flags = 7;
}
message ActivePolicyRemove { string id = 1; }
message ActiveProfileUpdate {
  string id = 1;
  repeated RenderedRule inbound = 2;
  repeated RenderedRule outbound = 3;
}
message ActiveProfileRemove { string id = 1; }
message TierPolicies {
  string tier = 1;
  string default_action = 2; // deny | pass
  repeated string policy_ids = 3;
}
message DirectionalTiers {
  repeated TierPolicies ingress = 1;
  repeated TierPolicies egress = 2;
}
message WorkloadEndpointUpdate {
  string id = 1;
  string ifname = 2;
  optional string mac = 3;
  repeated string ip_networks = 4;
  DirectionalTiers tiers = 5;
  repeated string profile_ids = 6;
}
message WorkloadEndpointRemove { string id = 1; }
message FailsafePort {
  string protocol = 1; // tcp | udp | sctp
  uint32 port = 2;
  optional string net = 3;
}
message Failsafe {
  repeated FailsafePort inbound = 1;
  repeated FailsafePort outbound = 2;
}
message HostEndpointUpdate {
  string id = 1;
  string ifname = 2;
  repeated string expected_ips = 3;
  DirectionalTiers tiers = 4;
  DirectionalTiers untracked_tiers = 5;
  DirectionalTiers pre_dnat_tiers = 6;
  DirectionalTiers forward_tiers = 7;
  repeated string profile_ids = 8;
  Failsafe failsafe = 9;
}
message HostEndpointRemove { string id = 1; }

// One update of the stream; the populated field is the update's kind.
message Update {
  oneof update {
    RouteUpdate route_update = 1;
    RouteRemove route_remove = 2;
    VtepUpdate vtep_update = 3;
    VtepRemove vtep_remove = 4;
    PoolUpdate pool_update = 5;
    PoolRemove pool_remove = 6;
    HostUpdate host_update = 7;
    HostRemove host_remove = 8;
    InSync in_sync = 9;
    IpSetUpdate ip_set_update = 10;
    IpSetDeltaUpdate ip_set_delta_update = 11;
    IpSetRemove ip_set_remove = 12;
    ActivePolicyUpdate active_policy_update = 13;
    ActivePolicyRemove active_policy_remove = 14;
    ActiveProfileUpdate active_profile_update = 15;
    ActiveProfileRemove active_profile_remove = 16;
    WorkloadEndpointUpdate workload_endpoint_update = 17;
    WorkloadEndpointRemove workload_endpoint_remove = 18;
    HostEndpointUpdate host_endpoint_update = 19;
    HostEndpointRemove host_endpoint_remove = 20;
  }
}

// ---- requests and responses ----

message Hello {
  uint32 version = 1;     // protocol version (1)
  string implementation = 2;
}
message ApplyRequest { repeated Update updates = 1; }
message ApplyResponse {
  bool in_sync = 1;
  bool programmed = 2;
  repeated string warnings = 3;
}
message SnapshotRequest {}
message NextHop {
  optional string via = 1;
  optional string dev = 2;
  bool onlink = 3;
}
message ProgrammedRoute {
  string dst = 1;
  string type = 2; // unicast | blackhole
  repeated NextHop next_hops = 3;
}
message ProgrammedVtep {
  string address = 1;
  string mac = 2;
  string underlay = 3;
}
message ProgrammedIpSet {
  string id = 1;
  repeated string members = 2;
}
message ProgrammedEndpoint {
  string id = 1;
  string ifname = 2;
}
message Snapshot {
  bool in_sync = 1;
  repeated ProgrammedRoute routes = 2;
  repeated ProgrammedVtep vteps = 3;
  repeated ProgrammedIpSet ip_sets = 4;
  repeated string policies = 5;
  repeated ProgrammedEndpoint endpoints = 6;
  repeated string nat_pools = 7;
}
message CloseRequest {}
message CloseResponse {}
message Error {
  string code = 1;       // a DataplaneErrorCode
  string message = 2;
  bool retryable = 3;
  string details_json = 4;
}

message Envelope {
  uint32 id = 1; // request id, echoed by the response
  oneof body {
    Hello hello = 2;
    Hello hello_ack = 3;
    ApplyRequest apply = 4;
    ApplyResponse applied = 5;
    SnapshotRequest snapshot = 6;
    Snapshot snapshot_result = 7;
    CloseRequest close = 8;
    CloseResponse closed = 9;
    Error error = 10;
  }
}
`;
