#include "dataplane/fwd/counters.h"

namespace ng::fwd {

const char* dropReasonName(DropReason reason) noexcept {
  switch (reason) {
    case DropReason::kTruncated: return "truncated";
    case DropReason::kVlan: return "vlan";
    case DropReason::kUnsupportedEtherType: return "unsupported_ether_type";
    case DropReason::kBadArp: return "bad_arp";
    case DropReason::kArpNotForUs: return "arp_not_for_us";
    case DropReason::kBadIpHeader: return "bad_ip_header";
    case DropReason::kIpChecksum: return "ip_checksum";
    case DropReason::kBadL4Header: return "bad_l4_header";
    case DropReason::kFragment: return "fragment";
    case DropReason::kFragmentNoFlow: return "fragment_no_flow";
    case DropReason::kFragmentMalformed: return "fragment_malformed";
    case DropReason::kFragmentTableFull: return "fragment_table_full";
    case DropReason::kTtlExceeded: return "ttl_exceeded";
    case DropReason::kMartian: return "martian";
    case DropReason::kNotForUs: return "not_for_us";
    case DropReason::kLocalNoExceptionPath: return "local_no_exception_path";
    case DropReason::kUnsupportedProtocol: return "unsupported_protocol";
    case DropReason::kIcmpUnsupported: return "icmp_unsupported";
    case DropReason::kNoService: return "no_service";
    case DropReason::kSourceDenied: return "source_denied";
    case DropReason::kNoBackend: return "no_backend";
    case DropReason::kNoFlow: return "no_flow";
    case DropReason::kDrainTimeout: return "drain_timeout";
    case DropReason::kFlowTableFull: return "flow_table_full";
    case DropReason::kSnatExhausted: return "snat_exhausted";
    case DropReason::kNeighborUnresolved: return "neighbor_unresolved";
    case DropReason::kWrongPort: return "wrong_port";
    case DropReason::kTxFull: return "tx_full";
    case DropReason::kMultiSegment: return "multi_segment";
    case DropReason::kRedirectFull: return "redirect_full";
    case DropReason::kExtHeaderChain: return "ext_header_chain";
    case DropReason::kJumbogram: return "jumbogram";
    case DropReason::kRoutingHeader: return "routing_header";
    case DropReason::kBadNd: return "bad_nd";
    case DropReason::kNdNotForUs: return "nd_not_for_us";
    case DropReason::kTunnelTooBig: return "tunnel_too_big";
    case DropReason::kFragNeededRateLimited: return "frag_needed_rate_limited";
    case DropReason::kNoHeadroom: return "no_headroom";
    case DropReason::kExceptionRateLimit: return "exception_rate_limit";
    case DropReason::kExceptionQueueFull: return "exception_queue_full";
    case DropReason::kToTunnelSource: return "to_tunnel_source";
    case DropReason::kCount: break;
  }
  return "unknown";
}

}  // namespace ng::fwd
