//go:build dpdk

package cbench

/*
#include <stdint.h>
#include <time.h>
#include <rte_acl.h>

// cbench_loop classifies `total` keys, cycling over the n keys in buf
// (n a multiple of 64), 64 per rte_acl_classify call. It returns the elapsed
// CLOCK_MONOTONIC nanoseconds and the number of hits in *hits.
static uint64_t cbench_loop(const void *ctx, const uint8_t *buf, uint32_t stride, uint32_t n,
		uint64_t total, uint32_t *results, uint32_t cats, uint64_t *hits) {
	const uint8_t *data[64];
	struct timespec a, b;
	uint64_t done = 0, h = 0;
	uint32_t off = 0, i;
	clock_gettime(CLOCK_MONOTONIC, &a);
	while (done < total) {
		uint32_t m = total - done < 64 ? (uint32_t)(total - done) : 64;
		for (i = 0; i < m; i++)
			data[i] = buf + (size_t)(off + i) * stride;
		rte_acl_classify((const struct rte_acl_ctx *)ctx, data, results, m, cats);
		for (i = 0; i < m; i++)
			h += results[i * cats] != 0;
		done += m;
		off += 64;
		if (off >= n)
			off = 0;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	*hits = h;
	return (uint64_t)(b.tv_sec - a.tv_sec) * 1000000000ull + (uint64_t)(b.tv_nsec - a.tv_nsec);
}
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// Loop classifies total keys in C, cycling over the n keys (n a positive
// multiple of 64) stored stride bytes apart in in, with the rte_acl context
// ctx (see dpdkacl.Table.CContext) and cats result categories. It returns
// the nanoseconds the C loop took and its hit count.
func Loop(ctx unsafe.Pointer, in []byte, stride, n int, total uint64, cats int) (ns, hits uint64, err error) {
	if n <= 0 || n%64 != 0 || len(in) < n*stride {
		return 0, 0, fmt.Errorf("cbench: %d keys of %d bytes in a %d-byte buffer", n, stride, len(in))
	}
	res := make([]uint32, 64*cats)
	var h C.uint64_t
	d := C.cbench_loop(ctx, (*C.uint8_t)(unsafe.Pointer(&in[0])), C.uint32_t(stride), C.uint32_t(n),
		C.uint64_t(total), (*C.uint32_t)(unsafe.Pointer(&res[0])), C.uint32_t(cats), &h)
	return uint64(d), uint64(h), nil
}
