package proxy

import "time"

// gapDeadline keeps a connection's deadline `timeout` after its latest read
// (or write), for the timeouts that bound the gap between two I/O calls:
// CLIENT_BODY_TIMEOUT, SEND_TIMEOUT, PROXY_READ_TIMEOUT.
//
// Moving a deadline rearms a runtime timer and can wake the network
// poller, a cost worth avoiding on every 16 KiB read. So the deadline only
// moves once it has fallen behind by more than a slack of an eighth of the
// timeout (at most a second): a silent peer is cut off after between 7/8 of
// the timeout and the timeout — finer than nginx's own timer resolution.
type gapDeadline struct {
	at time.Time // the deadline set on the connection; zero before any
}

// next returns the deadline to set and true, or false when the one already
// set is recent enough.
func (g *gapDeadline) next(timeout time.Duration) (time.Time, bool) {
	want := time.Now().Add(timeout)
	slack := min(timeout/8, time.Second)
	if !g.at.IsZero() && want.Sub(g.at) <= slack {
		return time.Time{}, false
	}
	g.at = want
	return want, true
}

// forget makes the next call set the deadline: someone else has set one.
func (g *gapDeadline) forget() { g.at = time.Time{} }
