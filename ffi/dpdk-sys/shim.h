/* One-line forwarders for DPDK's static-inline functions and macros, which bindgen cannot bind.
 * Each `vs_X` calls `X` with the same arguments; see shim.c. */
#ifndef DRAGONFLOW_DPDK_SHIM_H
#define DRAGONFLOW_DPDK_SHIM_H
#include <stdint.h>

struct rte_mbuf;
struct rte_mempool;
struct rte_ring;

uint16_t vs_rte_eth_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
uint16_t vs_rte_eth_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
struct rte_mbuf *vs_rte_pktmbuf_alloc(struct rte_mempool *mp);
int vs_rte_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned int count);
void vs_rte_pktmbuf_free(struct rte_mbuf *m);
char *vs_rte_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
char *vs_rte_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len);
char *vs_rte_pktmbuf_adj(struct rte_mbuf *m, uint16_t len);
int vs_rte_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
uint16_t vs_rte_pktmbuf_headroom(const struct rte_mbuf *m);
uint16_t vs_rte_pktmbuf_tailroom(const struct rte_mbuf *m);
unsigned int vs_rte_ring_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned int n);
unsigned int vs_rte_ring_dequeue_burst(struct rte_ring *r, void **objs, unsigned int n);
unsigned int vs_rte_ring_count(const struct rte_ring *r);
unsigned int vs_rte_lcore_id(void);
int vs_rte_errno(void);
uint64_t vs_rte_rdtsc(void);
void vs_rte_pause(void);
void vs_rte_prefetch0(const void *p);

/* Constants built with RTE_BIT64(), which bindgen drops. */
extern const uint64_t VS_RTE_ETH_RSS_IP;
extern const uint64_t VS_RTE_ETH_RSS_UDP;
extern const uint64_t VS_RTE_ETH_RSS_TCP;
extern const uint64_t VS_RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;

#endif
