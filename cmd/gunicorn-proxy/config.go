package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v10"
	"github.com/gunicorn-proxy/gunicorn-proxy/compress"
	"github.com/gunicorn-proxy/gunicorn-proxy/proxy"
	"github.com/gunicorn-proxy/gunicorn-proxy/ratelimit"
)

// config is the environment, typed. Each field's `help` tag feeds --help;
// a variable that needs a default the env library cannot express (LISTEN,
// which PORT may stand in for) says so in `shown`.
type config struct {
	MaxConnections      count          `env:"MAX_CONNECTIONS" envDefault:"10000" help:"simultaneous client connections; one more gets a 503 and is closed"`
	MaxBodySize         size           `env:"MAX_BODY_SIZE" envDefault:"1m" help:"largest request body (nginx size syntax: 512, 64k, 1m, 1g; 0 = no limit); larger gets a 413"`
	Scheme              scheme         `env:"SCHEME" help:"if set (http or https), sent as X-Forwarded-Proto instead of the listener's scheme"`
	SSLKey              string         `env:"SSL_KEY" help:"PEM private key file: serve HTTPS (needs SSL_CRT)"`
	SSLCrt              string         `env:"SSL_CRT" help:"PEM certificate chain file, leaf first (needs SSL_KEY)"`
	SSLPasswordFile     string         `env:"SSL_PASSWORD_FILE" help:"file of passwords for an encrypted SSL_KEY, one per line, tried in turn"`
	AutoSSL             flag           `env:"AUTO_SSL" help:"if set (and not 0/false/off/no), serve HTTPS with a self-signed certificate made at start"`
	Log                 string         `env:"LOG" help:"access log: stdout, a file path, or syslog:server=ADDR[,facility=…,severity=…,tag=…,nohostname]; unset = off"`
	Listen              listenAddr     `env:"LISTEN" shown:":8000" help:"where to listen: host:port, :port or unix:/path; PORT=N alone means :N"`
	Port                port           `env:"PORT" help:"the port to listen on when LISTEN is not set (Heroku, Cloud Run)"`
	TrustedProxies      trustedProxies `env:"TRUSTED_PROXIES" envDefault:"10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7" help:"peers whose X-Forwarded-For is kept and appended to (CIDRs or addresses, comma-separated); none = nobody"`
	ClientHeaderTimeout duration       `env:"CLIENT_HEADER_TIMEOUT" envDefault:"5s" help:"time to receive the whole request header (408 after)"`
	ClientBodyTimeout   duration       `env:"CLIENT_BODY_TIMEOUT" envDefault:"5s" help:"longest gap between two reads of the request body (408 after)"`
	KeepaliveTimeout    duration       `env:"KEEPALIVE_TIMEOUT" envDefault:"65s" help:"how long an idle client keep-alive connection is kept"`
	SendTimeout         duration       `env:"SEND_TIMEOUT" envDefault:"60s" help:"longest gap between two writes to a client reading the response"`
	ProxyConnectTimeout duration       `env:"PROXY_CONNECT_TIMEOUT" envDefault:"5s" help:"time to connect to the app (502 after)"`
	ProxyReadTimeout    duration       `env:"PROXY_READ_TIMEOUT" envDefault:"60s" help:"longest gap between two reads from (or writes to) the app (504 after)"`
	WebSocketIdle       duration       `env:"WEBSOCKET_IDLE_TIMEOUT" envDefault:"1h" help:"a WebSocket with no traffic either way for this long is closed"`
	ShutdownTimeout     duration       `env:"SHUTDOWN_TIMEOUT" envDefault:"30s" help:"on SIGTERM/SIGQUIT/SIGINT, how long requests in flight may take to finish"`
	BufferDir           bufferDir      `env:"BUFFER_DIR" shown:"the OS temp dir" help:"where request and response bodies over BUFFER_MEMORY are spooled (anonymous files, gone when the request ends)"`
	BufferMemory        size           `env:"BUFFER_MEMORY" envDefault:"64k" help:"how much of one body is kept in memory before the rest goes to BUFFER_DIR"`
	PprofListen         string         `env:"PPROF_LISTEN" help:"if set (e.g. 127.0.0.1:6060), serve Go's /debug/pprof/ there, for profiling; never on a public address"`
	AdminListen         listenAddr     `env:"ADMIN_LISTEN" help:"admin listener for /healthz, /readyz and /metrics (Prometheus): host:port, :port or unix:/path; unset = off"`

	Compress          onOff         `env:"COMPRESS" envDefault:"on" help:"compress the app's answers (gzip; brotli or zstd when the client prefers them): on or off"`
	CompressLevel     compressLevel `env:"COMPRESS_LEVEL" envDefault:"5" help:"gzip level, 1 (fastest) to 9 (smallest); brotli and zstd get a level of similar cost"`
	CompressMinLength minLength     `env:"COMPRESS_MIN_LENGTH" envDefault:"256" help:"smallest answer compressed, in bytes (nginx size syntax)"`
	CompressTypes     mediaTypes    `env:"COMPRESS_TYPES" shown:"the old image's list" help:"media types compressed, comma-separated (text/*, application/json, * for all); replaces the default: text/html and h5bp's text, JSON, JS, XML, SVG, wasm, BMP and font types"`

	RateLimit        rate     `env:"RATE_LIMIT" help:"requests per client address, nginx syntax: 10r/s or 600r/m; unset = no limit"`
	RateLimitBurst   burst    `env:"RATE_LIMIT_BURST" envDefault:"0" help:"requests over the rate a client may make before it is refused; they are spaced at the rate unless RATE_LIMIT_NODELAY"`
	RateLimitNoDelay flag     `env:"RATE_LIMIT_NODELAY" help:"if set (and not 0/false/off/no), requests within the burst go at once instead of being spaced at the rate"`
	RateLimitStatus  status   `env:"RATE_LIMIT_STATUS" envDefault:"503" help:"the status of a refused request (503 as nginx; 429 Too Many Requests is the modern choice)"`
	RateLimitSize    zoneSize `env:"RATE_LIMIT_SIZE" envDefault:"10m" help:"memory for client states, nginx size syntax: 64 bytes each, 10m = 163840 addresses; the least recently seen are evicted"`

	// Headers are the HEADER_* variables: not a struct field of the env
	// library's, since their names are open-ended.
	Headers []proxy.Header

	// notes are lines printed at start about settings that have no effect.
	notes []string
}

// defaultListen is where the proxy listens when neither LISTEN nor PORT is set.
const defaultListen = ":8000"

// configError is one bad variable: it prints as the single line the
// operator sees, naming the variable, the value and what was expected.
type configError struct {
	name, value, expected string
}

func (e *configError) Error() string {
	return fmt.Sprintf("%s=%q: expected %s", e.name, e.value, e.expected)
}

// expectation is what a parser says it wanted; loadConfig adds the name and
// value around it.
type expectation string

func (e expectation) Error() string { return string(e) }

// loadConfigOrSay is loadConfig for a command: each error goes to stderr
// on a line of its own, after who, and a nil config means stop.
func loadConfigOrSay(environ []string, stderr io.Writer, who string) *config {
	cfg, errs := loadConfig(environ)
	for _, err := range errs {
		fmt.Fprintln(stderr, who, err)
	}
	if len(errs) > 0 {
		return nil
	}
	return cfg
}

// loadConfig reads the configuration from environ ("KEY=value" strings).
func loadConfig(environ []string) (*config, []error) {
	vars := envMap(environ)
	cfg := new(config)
	err := env.ParseWithOptions(cfg, env.Options{Environment: vars, FuncMap: parsers})
	errs := describeEnvErrors(err, vars)
	cfg.Headers, err = parseHeaders(vars)
	if err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, cfg.check(vars)...)
	cfg.notes = cfg.notice(vars)
	return cfg, errs
}

// describeEnvErrors turns the env library's errors, which name struct
// fields, into configErrors, which name variables.
func describeEnvErrors(err error, vars map[string]string) []error {
	if err == nil {
		return nil
	}
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return []error{err}
	}
	keys := envKeys()
	var errs []error
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			key := keys[pe.Name]
			errs = append(errs, &configError{name: key, value: vars[key], expected: pe.Err.Error()})
			continue
		}
		errs = append(errs, e)
	}
	return errs
}

// envKeys maps config's field names to their variables.
func envKeys() map[string]string {
	t := reflect.TypeOf(config{})
	keys := make(map[string]string, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		keys[t.Field(i).Name] = t.Field(i).Tag.Get("env")
	}
	return keys
}

// check validates what no single variable can: combinations.
func (c *config) check(vars map[string]string) []error {
	var errs []error
	if (c.SSLKey == "") != (c.SSLCrt == "") {
		set, unset := "SSL_KEY", "SSL_CRT"
		if c.SSLKey == "" {
			set, unset = unset, set
		}
		errs = append(errs, &configError{name: set, value: vars[set], expected: unset + " to be set as well (SSL_KEY and SSL_CRT go together)"})
	}
	if c.SSLPasswordFile != "" && c.SSLKey == "" {
		errs = append(errs, &configError{name: "SSL_PASSWORD_FILE", value: c.SSLPasswordFile, expected: "SSL_KEY to be set (the passwords decrypt SSL_KEY)"})
	}
	if c.BufferMemory < 1<<10 || c.BufferMemory > 1<<30 {
		errs = append(errs, &configError{name: "BUFFER_MEMORY", value: vars["BUFFER_MEMORY"], expected: "a size from 1k to 1g"})
	}
	if c.AdminListen.address != "" && c.AdminListen == c.listenAddress() {
		errs = append(errs, &configError{name: "ADMIN_LISTEN", value: vars["ADMIN_LISTEN"], expected: "an address other than the proxy's own (LISTEN, PORT or :8000)"})
	}
	if c.AutoSSL && c.SSLKey != "" {
		errs = append(errs, &configError{name: "AUTO_SSL", value: vars["AUTO_SSL"], expected: "AUTO_SSL unset when SSL_KEY and SSL_CRT are set (use one or the other)"})
	}
	return errs
}

// notice lists settings that are valid but have no effect, for a line on
// stderr at start: the old image ignored them silently, so they are not
// errors, but an operator should know.
func (c *config) notice(vars map[string]string) []string {
	var notes []string
	if c.RateLimit == 0 {
		for _, name := range []string{"RATE_LIMIT_BURST", "RATE_LIMIT_NODELAY", "RATE_LIMIT_STATUS", "RATE_LIMIT_SIZE"} {
			if _, set := vars[name]; set {
				notes = append(notes, name+" is set but RATE_LIMIT is not: no rate limit applies")
			}
		}
	}
	if !c.Compress {
		for _, name := range []string{"COMPRESS_LEVEL", "COMPRESS_MIN_LENGTH", "COMPRESS_TYPES"} {
			if _, set := vars[name]; set {
				notes = append(notes, name+" is set but COMPRESS=off: nothing is compressed")
			}
		}
	}
	return notes
}

// listenAddress is LISTEN, else :PORT, else the default.
func (c *config) listenAddress() listenAddr {
	switch {
	case c.Listen.address != "":
		return c.Listen
	case c.Port != 0:
		return listenAddr{network: "tcp", address: ":" + strconv.Itoa(int(c.Port))}
	default:
		return listenAddr{network: "tcp", address: defaultListen}
	}
}

// The value types, each with the parser the env library calls.
type (
	count          int
	size           int64
	duration       time.Duration
	scheme         string
	flag           bool
	port           int
	trustedProxies proxy.TrustedProxies
	listenAddr     struct{ network, address string }
	bufferDir      string
	onOff          bool
	compressLevel  int
	minLength      int
	mediaTypes     []string
	rate           ratelimit.Rate
	burst          int
	status         int
	zoneSize       int64
)

var parsers = map[reflect.Type]env.ParserFunc{
	reflect.TypeOf(count(0)):         func(v string) (any, error) { n, err := parseCount(v); return count(n), err },
	reflect.TypeOf(size(0)):          func(v string) (any, error) { n, err := parseSize(v); return size(n), err },
	reflect.TypeOf(duration(0)):      func(v string) (any, error) { d, err := parseDuration(v); return duration(d), err },
	reflect.TypeOf(scheme("")):       func(v string) (any, error) { s, err := parseScheme(v); return scheme(s), err },
	reflect.TypeOf(flag(false)):      func(v string) (any, error) { return flag(parseFlag(v)), nil },
	reflect.TypeOf(port(0)):          func(v string) (any, error) { n, err := parsePort(v); return port(n), err },
	reflect.TypeOf(trustedProxies{}): func(v string) (any, error) { t, err := parseTrustedProxies(v); return trustedProxies(t), err },
	reflect.TypeOf(listenAddr{}):     func(v string) (any, error) { n, a, err := parseListen(v); return listenAddr{n, a}, err },
	reflect.TypeOf(onOff(false)):     func(v string) (any, error) { b, err := parseOnOff(v); return onOff(b), err },
	reflect.TypeOf(compressLevel(0)): func(v string) (any, error) { n, err := parseCompressLevel(v); return compressLevel(n), err },
	reflect.TypeOf(minLength(0)):     func(v string) (any, error) { n, err := parseMinLength(v); return minLength(n), err },
	reflect.TypeOf(mediaTypes{}):     func(v string) (any, error) { t, err := parseMediaTypes(v); return mediaTypes(t), err },
	reflect.TypeOf(rate(0)):          func(v string) (any, error) { r, err := ratelimit.ParseRate(v); return rate(r), err },
	reflect.TypeOf(burst(0)):         func(v string) (any, error) { n, err := parseBurst(v); return burst(n), err },
	reflect.TypeOf(status(0)):        func(v string) (any, error) { n, err := parseStatus(v); return status(n), err },
	reflect.TypeOf(zoneSize(0)):      func(v string) (any, error) { n, err := parseZoneSize(v); return zoneSize(n), err },
	reflect.TypeOf(bufferDir("")):    func(v string) (any, error) { d, err := parseBufferDir(v); return bufferDir(d), err },
}

func parseCount(v string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 1 {
		return 0, expectation("a whole number of at least 1")
	}
	return n, nil
}

// parseSize reads nginx's size syntax: a number of bytes with an optional
// k, m or g suffix (either case), each a power of 1024.
func parseSize(v string) (int64, error) {
	return parseSizeWant(v, "a size in bytes with an optional k, m or g suffix (512, 64k, 1m, 1g), or 0 for no limit")
}

func parseSizeWant(v string, want expectation) (int64, error) {
	s := strings.TrimSpace(v)
	if s == "" {
		return 0, want
	}
	shift := 0
	switch s[len(s)-1] {
	case 'k', 'K':
		shift = 10
	case 'm', 'M':
		shift = 20
	case 'g', 'G':
		shift = 30
	}
	if shift > 0 {
		s = s[:len(s)-1]
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, want
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > (1<<62)>>shift {
		return 0, want
	}
	return n << shift, nil
}

// parseDuration accepts Go's syntax (1m30s, 500ms) and, as nginx and most
// operators write it, a bare number of seconds.
func parseDuration(v string) (time.Duration, error) {
	const want = expectation("a duration such as 30s, 1m30s or 500ms, or a number of seconds")
	s := strings.TrimSpace(v)
	if s == "" {
		return 0, want
	}
	if secs, err := strconv.ParseFloat(s, 64); err == nil {
		if secs < 0 || secs > 1e9 {
			return 0, want
		}
		return time.Duration(secs * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, want
	}
	return d, nil
}

// parseBufferDir checks that bodies can really be spooled there, so a
// read-only or missing directory stops the start, not the first upload.
func parseBufferDir(v string) (string, error) {
	if err := proxy.CheckBufferDir(v); err != nil {
		return "", expectation(fmt.Sprintf("a directory where the proxy can create files (%v)", err))
	}
	return v, nil
}

// parseOnOff reads a switch. COMPRESS is on unless turned off, so a value
// that is neither is an error rather than a guess.
func parseOnOff(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "on", "1", "true", "yes":
		return true, nil
	case "off", "0", "false", "no":
		return false, nil
	}
	return false, expectation("on or off")
}

func parseCompressLevel(v string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 1 || n > 9 {
		return 0, expectation("a gzip level from 1 (fastest) to 9 (smallest)")
	}
	return n, nil
}

// parseMinLength reads COMPRESS_MIN_LENGTH in nginx's size syntax, as
// gzip_min_length takes it.
func parseMinLength(v string) (int, error) {
	n, err := parseSizeWant(v, "a length in bytes (256, 1k), 0 to compress answers of any length")
	if err != nil || n > 1<<30 {
		return 0, expectation("a length in bytes (256, 1k), 0 to compress answers of any length")
	}
	return int(n), nil
}

func parseMediaTypes(v string) ([]string, error) {
	types, err := compress.ParseTypes(v)
	if err != nil {
		return nil, expectation("media types separated by commas (text/html, application/json, text/*, or * for all): " + err.Error())
	}
	return types, nil
}

func parseBurst(v string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 || n > ratelimit.MaxRequests {
		return 0, expectation("a whole number of requests, 0 or more")
	}
	return n, nil
}

// parseStatus reads RATE_LIMIT_STATUS: any 4xx or 5xx, as nginx's
// limit_req_status (400–599) takes.
func parseStatus(v string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 400 || n > 599 {
		return 0, expectation("a status from 400 to 599, such as 503 or 429")
	}
	return n, nil
}

// minZoneSize is nginx's smallest limit_req zone (8 pages of 4 KiB).
const minZoneSize = 32 << 10

func parseZoneSize(v string) (int64, error) {
	const want = expectation("a size of at least 32k with an optional k, m or g suffix (10m, 512k)")
	n, err := parseSizeWant(v, want)
	if err != nil || n < minZoneSize || n > 64<<30 {
		return 0, want
	}
	return n, nil
}

func parseScheme(v string) (string, error) {
	switch s := strings.ToLower(strings.TrimSpace(v)); s {
	case "http", "https":
		return s, nil
	}
	return "", expectation("http or https")
}

// parseFlag: the old image enabled AUTO_SSL for any value; the one change
// is that the values people write to mean "off" do mean off.
func parseFlag(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "0", "false", "off", "no":
		return false
	}
	return true
}

func parsePort(v string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 1 || n > 65535 {
		return 0, expectation("a port number from 1 to 65535")
	}
	return n, nil
}

// parseTrustedProxies reads a comma-separated list of CIDRs or single
// addresses; "none" trusts nobody.
func parseTrustedProxies(v string) (proxy.TrustedProxies, error) {
	const want = "a comma-separated list of CIDRs or addresses (10.0.0.0/8,::1), or none"
	s := strings.TrimSpace(v)
	if strings.EqualFold(s, "none") {
		return proxy.TrustedProxies{}, nil
	}
	var list proxy.TrustedProxies
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if p, err := netip.ParsePrefix(item); err == nil {
			list = append(list, p.Masked())
			continue
		}
		if a, err := netip.ParseAddr(item); err == nil {
			list = append(list, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		return nil, expectation(fmt.Sprintf("%s; %q is neither", want, item))
	}
	if len(list) == 0 {
		return nil, expectation(want)
	}
	return list, nil
}

// parseListen reads host:port, :port or unix:/path.
func parseListen(v string) (network, address string, err error) {
	const want = expectation("host:port, :port or unix:/path/to.sock")
	s := strings.TrimSpace(v)
	if path, ok := strings.CutPrefix(s, "unix:"); ok {
		if !strings.HasPrefix(path, "/") {
			return "", "", want
		}
		return "unix", path, nil
	}
	host, p, splitErr := net.SplitHostPort(s)
	if splitErr != nil || strings.ContainsAny(host, " /") {
		return "", "", want
	}
	if _, err := parsePort(p); err != nil {
		return "", "", want
	}
	return "tcp", s, nil
}

// parseUpstream reads the one argument: host:port, http://host[:port] or
// unix:/path/to.sock.
func parseUpstream(arg string) (proxy.Upstream, error) {
	const want = "host:port, http://host:port or unix:/path/to.sock"
	bad := func(why string) (proxy.Upstream, error) {
		if why != "" {
			why = " (" + why + ")"
		}
		return proxy.Upstream{}, fmt.Errorf("server argument %q: expected %s%s", arg, want, why)
	}
	s := strings.TrimSpace(arg)
	if path, ok := strings.CutPrefix(s, "unix:"); ok {
		if !strings.HasPrefix(path, "/") {
			return bad("the socket path must be absolute")
		}
		return proxy.Upstream{Network: "unix", Address: path}, nil
	}
	defaultPort := ""
	if rest, ok := cutPrefixFold(s, "http://"); ok {
		s = strings.TrimSuffix(rest, "/")
		defaultPort = "80"
	} else if _, ok := cutPrefixFold(s, "https://"); ok {
		return bad("the proxy speaks plain HTTP to the app; TLS belongs on the client side")
	}
	if strings.ContainsAny(s, "/?#@ ") {
		return bad("no path, query or user name: the app gets the client's path as is")
	}
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		if defaultPort == "" {
			return bad("no port")
		}
		host, p = s, defaultPort
	}
	// http://[::1] keeps its brackets (SplitHostPort, which removes them,
	// found no port); a bracket anywhere else makes no host.
	if h, ok := strings.CutPrefix(host, "["); ok {
		if host, ok = strings.CutSuffix(h, "]"); !ok {
			return bad("bad host")
		}
	}
	if host == "" {
		return bad("no host")
	}
	if strings.ContainsAny(host, "[]") {
		return bad("bad host")
	}
	if _, err := parsePort(p); err != nil {
		return bad("bad port")
	}
	return proxy.Upstream{Network: "tcp", Address: net.JoinHostPort(host, p)}, nil
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

// parseHeaders turns HEADER_STRICT_TRANSPORT_SECURITY=max-age=31536000 into
// Strict-Transport-Security: max-age=31536000, sorted by name so that
// responses are the same whatever the order of the environment.
func parseHeaders(vars map[string]string) ([]proxy.Header, error) {
	var headers []proxy.Header
	for key, value := range vars {
		rest, ok := strings.CutPrefix(key, "HEADER_")
		if !ok {
			continue
		}
		name := headerName(rest)
		if !validToken(name) {
			return nil, &configError{name: key, value: value, expected: "a variable name that makes a header name: HEADER_ then letters, digits and underscores (HEADER_X_FRAME_OPTIONS)"}
		}
		if strings.ContainsAny(value, "\r\n\x00") || strings.TrimSpace(value) == "" {
			return nil, &configError{name: key, value: value, expected: "a header value on one line, not empty"}
		}
		headers = append(headers, proxy.Header{Name: []byte(name), Value: []byte(strings.TrimSpace(value))})
	}
	sort.Slice(headers, func(i, j int) bool { return string(headers[i].Name) < string(headers[j].Name) })
	return headers, nil
}

// headerName: STRICT_TRANSPORT_SECURITY → Strict-Transport-Security.
func headerName(s string) string {
	words := strings.Split(s, "_")
	for i, w := range words {
		if w != "" {
			words[i] = strings.ToUpper(w[:1]) + strings.ToLower(w[1:])
		}
	}
	return strings.Join(words, "-")
}

func validToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return !strings.HasPrefix(s, "-") && !strings.HasSuffix(s, "-")
}
