// Package proxy is the request path of gunicorn-proxy: a fasthttp server
// that reads each whole request from the client, forwards it to one app
// server through a fasthttp.HostClient, reads the whole answer, and only
// then writes it to the client — so the app's workers never wait on a slow
// client, in either direction.
//
// The story, one file per concern:
//
//   - server.go: the fasthttp.Server settings, Serve, Shutdown, error pages.
//   - handler.go: one request, from the client's header to the app's answer.
//   - body.go: reading the request body within MAX_BODY_SIZE and timeouts.
//   - headers.go: which headers cross the proxy in each direction.
//   - forwarded.go: X-Forwarded-For, X-Real-IP and X-Forwarded-Port.
//   - transport.go: connections to the app, and when a request may be retried.
//   - conn.go: the client connection: timeouts, refusals, access-log timing.
//   - rawsock.go: socket reads and writes that do not wake the runtime's
//     sysmon thread at every request.
//   - errors.go: failures and the status each one maps to.
//   - accesslog.go: the record handed to the access log.
//
// The package knows nothing of environment variables, signals or exit
// codes; cmd/gunicorn-proxy turns those into a Config.
package proxy
