#pragma once
// Per-worker counters. Written only by the owning worker, read by the control thread.
// Relaxed atomics compile to plain loads and stores on x86 (no locked instructions), and
// make the cross-thread reads well defined; a reader may see a value one burst old.

#include <array>
#include <atomic>
#include <cstdint>

namespace ng::fwd {

class Counter {
 public:
  void add(uint64_t n = 1) noexcept {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void set(uint64_t n) noexcept { value_.store(n, std::memory_order_relaxed); }
  [[nodiscard]] uint64_t get() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// Why a frame was not forwarded. Every dropped frame increments exactly one reason.
enum class DropReason : uint8_t {
  kTruncated,           // shorter than the headers it announces
  kVlan,                // 802.1Q tag on a port configured untagged
  kUnsupportedEtherType,
  kBadArp,              // ARP that is not Ethernet/IPv4 or malformed
  kArpNotForUs,         // ARP request for an address we do not own (normal on a LAN)
  kBadIpHeader,         // version, IHL, total length
  kIpChecksum,
  kBadL4Header,         // TCP data offset or UDP length inconsistent
  kFragment,            // fragment of a datagram we do not balance (ICMP, other protocols)
  kFragmentNoFlow,      // later fragment whose first fragment has not passed (out of order,
                        // or aged out): fragment policy in fwd/processor.cc
  kFragmentMalformed,   // bad fragment header: MF with an empty or non-8-byte-multiple
                        // payload, past 65535 bytes, or overlapping the first fragment
  kFragmentTableFull,   // first fragment with no room in the fragment table
  kTtlExceeded,
  kMartian,             // source is broadcast, multicast, loopback, zero or our own
  kNotForUs,            // destination is neither a VIP nor a box address
  kLocalNoExceptionPath,// for the box itself but not ARP/ICMP echo, and the port has no
                        // exception path (dataplane.exception_path off)
  kUnsupportedProtocol, // IP protocol other than TCP, UDP, ICMP
  kIcmpUnsupported,     // ICMP other than echo request to a VIP or box address
  kNoService,           // VIP but no service on this port/protocol
  kSourceDenied,        // source outside the service's loadBalancerSourceRanges (new flows)
  kNoBackend,           // service has no usable backend
  kNoFlow,              // TCP non-SYN to a VIP, or a reply to a SNAT address, with no flow
  kDrainTimeout,        // a packet of a flow whose node drained past health.drain_timeout_s:
                        // the flow ends here
  kFlowTableFull,
  kSnatExhausted,
  kNeighborUnresolved,  // next hop MAC not known yet (ARP request sent)
  kWrongPort,           // arrived on a port of the wrong role (e.g. client traffic on internal)
  kTxFull,              // the device did not accept the frame
  kMultiSegment,        // chained mbuf (jumbo/scattered); not handled yet
  kRedirectFull,        // another worker's reply (or ARP copy) found that worker's ring full
  // IPv6 (fwd/processor6.cc, pkt/parse6.cc)
  kExtHeaderChain,      // IPv6 extension headers: more than pkt::kMaxExtHeaders or
                        // kMaxExtHeaderBytes, Hop-by-Hop not first, two Fragment headers
  kJumbogram,           // IPv6 payload length 0 with a Hop-by-Hop header (RFC 2675)
  kRoutingHeader,       // Routing header with segments left > 0 (source routing via us)
  kBadNd,               // NS/NA failing RFC 4861 validation (hop limit 255, checksum, code,
                        // length, options, multicast target, DAD rules)
  kNdNotForUs,          // NS for a target that is not ours (normal on a LAN)
  kTunnelTooBig,        // tunnel mode: the encapsulated packet would exceed the internal
                        // port's MTU and the packet may be fragmented (DF clear), or its
                        // frame cannot hold the ICMP answer
  kFragNeededRateLimited,// tunnel mode: too big with DF set, but this worker's ICMP
                        // frag-needed budget (dataplane.tunnel.icmp_rate) is spent
  kNoHeadroom,          // tunnel mode: the buffer has no room before the frame for the
                        // outer header (not with DPDK mbufs: they have RTE_PKTMBUF_HEADROOM)
  kExceptionRateLimit,  // for the kernel (exception path) beyond dataplane.exception_path.rate_pps
  kExceptionQueueFull,  // for the kernel, but its interface's queue was full (or no mbuf for a copy)
  kToTunnelSource,      // tunnel mode: a packet to an outer source address (dataplane.tunnel.
                        // source), i.e. a node's ICMP error about an IPIP packet; "protocol 4
                        // unreachable" means the node does not decapsulate (no ipip/tunl0)
  kCount
};

inline constexpr size_t kDropReasonCount = static_cast<size_t>(DropReason::kCount);
[[nodiscard]] const char* dropReasonName(DropReason reason) noexcept;

struct alignas(64) WorkerCounters {
  Counter rx_packets;
  Counter rx_bytes;
  Counter tx_packets;
  Counter tx_bytes;
  Counter to_nodes;        // client -> node, rewritten
  Counter to_clients;      // node -> client, restored
  Counter new_flows;
  Counter expired_flows;
  Counter active_flows;    // gauge: flow table size
  Counter half_open_flows; // gauge: flows in the table whose SYN is unanswered (kTcpSynSent)
  Counter flow_index_slots; // gauge: slots of the IPv4 flow index in use (it grows with the flows)
  // Half-open flows removed to make room for a new SYN (SYN-flood policy, processor.cc).
  Counter half_open_evictions;
  Counter arp_replies;
  Counter arp_requests;    // requests we sent
  Counter icmp_echo_replies;
  Counter fragments_forwarded;  // IPv4 and IPv6 fragments sent on (first ones included)
  // sessionAffinity ClientIP: new flows sent to the node remembered for their client, and
  // new flows whose client could not be remembered (its affinity-table bucket was full
  // of live entries; the flow still got the client-IP Maglev choice).
  Counter affinity_hits;
  Counter affinity_overflows;
  Counter busy_polls;      // polls that received at least one frame
  Counter idle_polls;
  Counter busy_cycles;     // TSC cycles spent in polls that received frames
  Counter idle_sleeps;     // back-off sleeps after runs of empty polls
  // Several workers: frames handed to the worker that owns them (full-NAT replies on the
  // wrong queue; ARP reply copies), and frames taken from this worker's ring.
  Counter redirected;
  Counter redirect_received;
  std::array<Counter, kDropReasonCount> drops;
  // IPv6 (appended: rx, to_nodes, to_clients, new_flows, fragments_forwarded and the
  // flow gauges count both families).
  Counter nd_replies;          // Neighbor Advertisements sent for our addresses
  Counter nd_requests;         // Neighbor Solicitations sent (next-hop resolution)
  Counter icmp6_echo_replies;
  // Tunnel mode: frames sent to a node inside an outer IPv4 header (also in to_nodes);
  // new flows forwarded without a record because the flow table was full (stateless
  // Maglev choice); ICMP frag-needed answers sent to clients.
  Counter tunneled;
  Counter tunnel_stateless;
  Counter frag_needed_sent;
  // Exception path (fwd/exception.h): frames handed to the kernel interface of the port
  // they arrived on (ARP reply copies included), frames the kernel sent out of a data
  // port, and gratuitous ARPs announcing VIPs.
  Counter to_kernel;
  Counter from_kernel;
  Counter garp_sent;
  // ICMP errors about full-NAT flows (IPv4 destination unreachable / time exceeded,
  // ICMPv6 Packet Too Big) forwarded with their quote translated (also in to_nodes /
  // to_clients); unsolicited Neighbor Advertisements announcing IPv6 VIPs (the IPv6
  // twin of garp_sent).
  Counter icmp_errors_translated;
  Counter na_sent;

  void drop(DropReason reason) noexcept { drops[static_cast<size_t>(reason)].add(); }
};

}  // namespace ng::fwd
