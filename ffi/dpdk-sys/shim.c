/* See shim.h. Compiled with the full `pkg-config --cflags libdpdk` (it carries -march=corei7, without which
 * rte_memcpy.h does not compile). */
#include <rte_config.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_cycles.h>
#include <rte_pause.h>
#include <rte_prefetch.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_ethdev.h>
#include "shim.h"

uint16_t vs_rte_eth_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{ return rte_eth_rx_burst(port, queue, pkts, n); }
uint16_t vs_rte_eth_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{ return rte_eth_tx_burst(port, queue, pkts, n); }
struct rte_mbuf *vs_rte_pktmbuf_alloc(struct rte_mempool *mp) { return rte_pktmbuf_alloc(mp); }
int vs_rte_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned int count)
{ return rte_pktmbuf_alloc_bulk(mp, mbufs, count); }
void vs_rte_pktmbuf_free(struct rte_mbuf *m) { rte_pktmbuf_free(m); }
char *vs_rte_pktmbuf_append(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_append(m, len); }
char *vs_rte_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_prepend(m, len); }
char *vs_rte_pktmbuf_adj(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_adj(m, len); }
int vs_rte_pktmbuf_trim(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_trim(m, len); }
uint16_t vs_rte_pktmbuf_headroom(const struct rte_mbuf *m) { return rte_pktmbuf_headroom(m); }
uint16_t vs_rte_pktmbuf_tailroom(const struct rte_mbuf *m) { return rte_pktmbuf_tailroom(m); }
unsigned int vs_rte_ring_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned int n)
{ return rte_ring_enqueue_burst(r, objs, n, NULL); }
unsigned int vs_rte_ring_dequeue_burst(struct rte_ring *r, void **objs, unsigned int n)
{ return rte_ring_dequeue_burst(r, objs, n, NULL); }
unsigned int vs_rte_lcore_id(void) { return rte_lcore_id(); }
int vs_rte_errno(void) { return rte_errno; }
uint64_t vs_rte_rdtsc(void) { return rte_rdtsc(); }
void vs_rte_pause(void) { rte_pause(); }
void vs_rte_prefetch0(const void *p) { rte_prefetch0(p); }

const uint64_t VS_RTE_ETH_RSS_IP = RTE_ETH_RSS_IP;
const uint64_t VS_RTE_ETH_RSS_UDP = RTE_ETH_RSS_UDP;
const uint64_t VS_RTE_ETH_RSS_TCP = RTE_ETH_RSS_TCP;
const uint64_t VS_RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE = RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;
unsigned int vs_rte_ring_count(const struct rte_ring *r) { return rte_ring_count(r); }
