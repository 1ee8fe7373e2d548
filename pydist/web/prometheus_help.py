"""HELP texts of /metrics, worded exactly as dnsdist 1.7.3 serves them (facts §7)."""
# ruff: noqa: E501  (the texts are dnsdist's, kept whole so they can be compared by eye)
from __future__ import annotations

# one per §5 entry exported to Prometheus (not special-memory-usage, latency-sum/-count)
ENTRY_HELP: dict[str, str] = {
    'responses': 'Number of responses received from backends',
    'servfail-responses': 'Number of SERVFAIL answers received from backends',
    'queries': 'Number of received queries',
    'frontend-nxdomain': 'Number of NXDomain answers sent to clients',
    'frontend-servfail': 'Number of SERVFAIL answers sent to clients',
    'frontend-noerror': 'Number of NoError answers sent to clients',
    'acl-drops': 'Number of packets dropped because of the ACL',
    'rule-drop': 'Number of queries dropped because of a rule',
    'rule-nxdomain': 'Number of NXDomain answers returned because of a rule',
    'rule-refused': 'Number of Refused answers returned because of a rule',
    'rule-servfail': 'Number of SERVFAIL answers received because of a rule',
    'rule-truncated': 'Number of truncated answers returned because of a rule',
    'self-answered': 'Number of self-answered responses',
    'downstream-timeouts': 'Number of queries not answered in time by a backend',
    'downstream-send-errors': 'Number of errors when sending a query to a backend',
    'trunc-failures': 'Number of errors encountered while truncating an answer',
    'no-policy': 'Number of queries dropped because no server was available',
    'latency0-1': 'Number of queries answered in less than 1ms',
    'latency1-10': 'Number of queries answered in 1-10 ms',
    'latency10-50': 'Number of queries answered in 10-50 ms',
    'latency50-100': 'Number of queries answered in 50-100 ms',
    'latency100-1000': 'Number of queries answered in 100-1000 ms',
    'latency-slow': 'Number of queries answered in more than 1 second',
    'latency-avg100': 'Average response latency in microseconds of the last 100 packets',
    'latency-avg1000': 'Average response latency in microseconds of the last 1000 packets',
    'latency-avg10000': 'Average response latency in microseconds of the last 10000 packets',
    'latency-avg1000000': 'Average response latency in microseconds of the last 1000000 packets',
    'latency-dot-avg100': 'Average response latency for DoT queries in microseconds of the last '
                          '100 packets',
    'latency-dot-avg1000': 'Average response latency for DoT queries in microseconds of the last '
                           '1000 packets',
    'latency-dot-avg10000': 'Average response latency for DoT queries in microseconds of the '
                            'last 10000 packets',
    'latency-dot-avg1000000': 'Average response latency for DoT queries in microseconds of the '
                              'last 1000000 packets',
    'uptime': 'Uptime of the dnsdist process in seconds',
    'real-memory-usage': 'Current memory usage in bytes',
    'udp-in-errors': 'From /proc/net/snmp InErrors',
    'udp-noport-errors': 'From /proc/net/snmp NoPorts',
    'udp-recvbuf-errors': 'From /proc/net/snmp RcvbufErrors',
    'udp-sndbuf-errors': 'From /proc/net/snmp SndbufErrors',
    'udp-in-csum-errors': 'From /proc/net/snmp InCsumErrors',
    'udp6-in-errors': 'From /proc/net/snmp6 Udp6InErrors',
    'udp6-recvbuf-errors': 'From /proc/net/snmp6 Udp6RcvbufErrors',
    'udp6-sndbuf-errors': 'From /proc/net/snmp6 Udp6SndbufErrors',
    'udp6-noport-errors': 'From /proc/net/snmp6 Udp6NoPorts',
    'udp6-in-csum-errors': 'From /proc/net/snmp6 Udp6InCsumErrors',
    'tcp-listen-overflows': 'From /proc/net/netstat ListenOverflows',
    'noncompliant-queries': 'Number of queries dropped as non-compliant',
    'noncompliant-responses': 'Number of answers from a backend dropped as non-compliant',
    'proxy-protocol-invalid': 'Number of queries dropped because of an invalid Proxy Protocol header',
    'rdqueries': 'Number of received queries with the recursion desired bit set',
    'empty-queries': 'Number of empty queries received from clients',
    'cache-hits': 'Number of times an answer was retrieved from cache',
    'cache-misses': 'Number of times an answer not found in the cache',
    'cpu-iowait': 'Time waiting for I/O to complete by the whole system, in units of USER_HZ',
    'cpu-steal': 'Stolen time, which is the time spent by the whole system in other operating systems when running in a virtualized environment, in units of USER_HZ',
    'cpu-sys-msec': 'Milliseconds spent by dnsdist in the system state',
    'cpu-user-msec': 'Milliseconds spent by dnsdist in the user state',
    'fd-usage': 'Number of currently used file descriptors',
    'dyn-blocked': 'Number of queries dropped because of a dynamic block',
    'dyn-block-nmg-size': 'Number of dynamic blocks entries',
    'security-status': 'Security status of this software. 0=unknown, 1=OK, 2=upgrade recommended, 3=upgrade mandatory',
    'doh-query-pipe-full': 'Number of DoH queries dropped because the internal pipe used to distribute queries was full',
    'doh-response-pipe-full': 'Number of DoH responses dropped because the internal pipe used to distribute responses was full',
    'outgoing-doh-query-pipe-full': 'Number of outgoing DoH queries dropped because the internal pipe used to distribute queries was full',
    'tcp-query-pipe-full': 'Number of TCP queries dropped because the internal pipe used to distribute queries was full',
    'tcp-cross-protocol-query-pipe-full': 'Number of TCP cross-protocol queries dropped because the internal pipe used to distribute queries was full',
    'tcp-cross-protocol-response-pipe-full': 'Number of TCP cross-protocol responses dropped because the internal pipe used to distribute queries was full',
}

# The HELP/TYPE blocks of per-server metrics, printed once before the servers' samples.
SERVER_METRICS: tuple[tuple[str, str, str], ...] = (
    # (metric suffix, TYPE, HELP)
    ('status', 'gauge', 'Whether this backend is up (1) or down (0)'),
    ('queries', 'counter', 'Amount of queries relayed to server'),
    ('responses', 'counter', 'Amount of responses received from this server'),
    ('drops', 'counter', 'Amount of queries not answered by server'),
    ('latency', 'gauge', "Server's latency when answering questions in milliseconds"),
    ('senderrors', 'counter', 'Total number of OS send errors while relaying queries'),
    ('outstanding', 'gauge', 'Current number of queries that are waiting for a backend response'),
    ('order', 'gauge', 'The order in which this server is picked'),
    ('weight', 'gauge', 'The weight within the order in which this server is picked'),
    ('tcpdiedsendingquery', 'counter', 'The number of TCP I/O errors while sending the query'),
    ('tcpdiedreadingresponse', 'counter', 'The number of TCP I/O errors while reading the response'),
    ('tcpgaveup', 'counter', 'The number of TCP connections failing after too many attempts'),
    ('tcpconnecttimeouts', 'counter', 'The number of TCP connect timeouts'),
    ('tcpreadtimeouts', 'counter', 'The number of TCP read timeouts'),
    ('tcpwritetimeouts', 'counter', 'The number of TCP write timeouts'),
    ('tcpcurrentconnections', 'gauge', 'The number of current TCP connections'),
    ('tcpmaxconcurrentconnections', 'counter', 'The maximum number of concurrent TCP connections'),
    ('tcpnewconnections', 'counter', 'The number of established TCP connections in total'),
    ('tcpreusedconnections', 'counter', 'The number of times a TCP connection has been reused'),
    ('tcpavgqueriesperconn', 'gauge', 'The average number of queries per TCP connection'),
    ('tcpavgconnduration', 'gauge', 'The average duration of a TCP connection (ms)'),
    ('tlsresumptions', 'counter', 'The number of times a TLS session has been resumed'),
)

FRONTEND_METRICS: tuple[tuple[str, str, str], ...] = (
    # (metric suffix, TYPE, HELP)
    ('queries', 'counter', 'Amount of queries received by this frontend'),
    ('responses', 'counter', 'Amount of responses sent by this frontend'),
    ('tcpdiedreadingquery', 'counter', 'Amount of TCP connections terminated while reading the query from the client'),
    ('tcpdiedsendingresponse', 'counter', 'Amount of TCP connections terminated while sending a response to the client'),
    ('tcpgaveup', 'counter', 'Amount of TCP connections terminated after too many attempts to get a connection to the backend'),
    ('tcpclientimeouts', 'counter', 'Amount of TCP connections terminated by a timeout while reading from the client'),
    ('tcpdownstreamtimeouts', 'counter', 'Amount of TCP connections terminated by a timeout while reading from the backend'),
    ('tcpcurrentconnections', 'gauge', 'Amount of current incoming TCP connections from clients'),
    ('tcpmaxconcurrentconnections', 'counter', 'Maximum number of concurrent incoming TCP connections from clients'),
    ('tcpavgqueriesperconnection', 'gauge', 'The average number of queries per TCP connection'),
    ('tcpavgconnectionduration', 'gauge', 'The average duration of a TCP connection (ms)'),
    ('tlsqueries', 'counter', 'Number of queries received by dnsdist over TLS, by TLS version'),
    ('tlsnewsessions', 'counter', 'Amount of new TLS sessions negotiated'),
    ('tlsresumptions', 'counter', 'Amount of TLS sessions resumed'),
    ('tlsunknownticketkeys', 'counter', 'Amount of attempts to resume TLS session from an unknown key (possibly expired)'),
    ('tlsinactiveticketkeys', 'counter', 'Amount of TLS sessions resumed from an inactive key'),
    ('tlshandshakefailures', 'counter', 'Amount of TLS handshake failures'),
)

# printed after the frontends' samples, as dnsdist does (pydist serves no DoH yet)
DOH_FRONTEND_METRICS: tuple[tuple[str, str, str], ...] = (
    ('http_connects', 'counter', 'Number of DoH TCP connections established to this frontend'),
    ('doh_http_method_queries', 'counter', 'Number of DoH queries received by dnsdist, by HTTP method'),
    ('doh_http_version_queries', 'counter', 'Number of DoH queries received by dnsdist, by HTTP version'),
    ('doh_bad_requests', 'counter', 'Number of requests that could not be converted to a DNS query'),
    ('doh_responses', 'counter', 'Number of responses sent, by type'),
    ('doh_version_status_responses', 'counter', 'Number of requests that could not be converted to a DNS query'),
)

POOL_METRICS: tuple[tuple[str, str, str], ...] = (
    # (metric suffix, TYPE, HELP)
    ('servers', 'gauge', 'Number of servers in that pool'),
    ('active_servers', 'gauge', 'Number of available servers in that pool'),
    ('cache_size', 'gauge', 'Maximum number of entries that this cache can hold'),
    ('cache_entries', 'gauge', 'Number of entries currently present in that cache'),
    ('cache_hits', 'counter', 'Number of hits from that cache'),
    ('cache_misses', 'counter', 'Number of misses from that cache'),
    ('cache_deferred_inserts', 'counter', 'Number of insertions into that cache skipped because it was already locked'),
    ('cache_deferred_lookups', 'counter', 'Number of lookups into that cache skipped because it was already locked'),
    ('cache_lookup_collisions', 'counter', 'Number of lookups into that cache that triggered a collision (same hash but different entry)'),
    ('cache_insert_collisions', 'counter', 'Number of insertions into that cache that triggered a collision (same hash but different entry)'),
    ('cache_ttl_too_shorts', 'counter', 'Number of insertions into that cache skipped because the TTL of the answer was not long enough'),
)

LATENCY_HELP = 'Histogram of responses by latency (in milliseconds)'
RULE_HITS_HELP = 'Number of hits of that rule'
DYNBLOCKS_NMG_TOP_OFFENDERS_HITS_PER_SECOND_HELP = 'Number of hits per second blocked by Dynamic Blocks (netmasks) for the top offenders, averaged over the last 60s'
DYNBLOCKS_SMT_TOP_OFFENDERS_HITS_PER_SECOND_HELP = 'Number of this per second blocked by Dynamic Blocks (suffixes) for the top offenders, averaged over the last 60s'
INFO_HELP = 'Info from dnsdist, value is always 1'


# per-server sample order differs from the HELP order for the TCP timeouts (as in 1.7.3)
SERVER_SAMPLE_ORDER = (
    "status", "queries", "responses", "drops", "latency", "senderrors", "outstanding", "order",
    "weight", "tcpdiedsendingquery", "tcpdiedreadingresponse", "tcpgaveup", "tcpreadtimeouts",
    "tcpwritetimeouts", "tcpconnecttimeouts", "tcpcurrentconnections",
    "tcpmaxconcurrentconnections", "tcpnewconnections", "tcpreusedconnections",
    "tcpavgqueriesperconn", "tcpavgconnduration", "tlsresumptions",
)
FRONTEND_TCP_SAMPLES = (
    "tcpdiedreadingquery", "tcpdiedsendingresponse", "tcpgaveup", "tcpclientimeouts",
    "tcpdownstreamtimeouts", "tcpcurrentconnections", "tcpmaxconcurrentconnections",
    "tcpavgqueriesperconnection", "tcpavgconnectionduration",
)
