// Package ratelimit limits the request rate of each client address with
// the semantics of nginx's limit_req, which the luhn/gunicorn-proxy image
// configured from RATE_LIMIT, RATE_LIMIT_BURST, RATE_LIMIT_NODELAY and
// RATE_LIMIT_SIZE.
//
// The algorithm is nginx's leaky bucket, to the millisecond and the
// milli-request: each address has an excess, in thousandths of a request,
// that drains at the rate and grows by 1000 with every request let through.
// A request that would take the excess over the burst is refused (and
// changes nothing); one within the burst waits until the excess it adds
// has drained at the rate, or goes at once with nodelay.
//
// The states live in a table of fixed capacity, set from RATE_LIMIT_SIZE
// as nginx sizes its zone, allocated once: however many addresses appear,
// memory does not grow. A new address takes a free entry, else the least
// recently used one, as nginx evicts from its zone.
//
//   - rate.go: RATE_LIMIT's syntax, and the zone size.
//   - limiter.go: the leaky bucket.
//   - table.go: the bounded, sharded table with its LRU lists.
package ratelimit
