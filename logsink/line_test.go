package logsink

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gunicorn-proxy/gunicorn-proxy/proxy"
)

var fields = []string{"ip", "method", "uri", "status", "processing_time", "request_time", "request_size", "time"}

var t0 = time.Date(2026, 11, 25, 15, 9, 47, 123456789, time.UTC)

// typical is a request that went to the app and back.
func typical() proxy.AccessRecord {
	return proxy.AccessRecord{
		ClientIP:     []byte("203.0.113.7"),
		Method:       []byte("GET"),
		URI:          []byte("/orders/42?page=2"),
		Status:       200,
		Start:        t0,
		End:          t0.Add(13900 * time.Microsecond),
		UpstreamTime: 12345600 * time.Nanosecond,
		RequestSize:  512,
	}
}

func TestAppendLine(t *testing.T) {
	kolkata := time.FixedZone("IST", 5*3600+1800)
	saoPaulo := time.FixedZone("BRT", -3*3600)
	tests := []struct {
		name string
		edit func(r *proxy.AccessRecord)
		loc  *time.Location
		want string // the whole line, without the trailing newline
	}{
		{"typical", func(r *proxy.AccessRecord) {}, time.UTC,
			`{"ip":"203.0.113.7","method":"GET","uri":"/orders/42?page=2","status":"200","processing_time":"0.012","request_time":"0.013","request_size":"512","time":"2026-11-25T15:09:47+00:00"}`},
		{"never reached the app (413)", func(r *proxy.AccessRecord) {
			r.Status, r.UpstreamTime, r.RequestSize = 413, -1, 2<<20
		}, time.UTC,
			`{"ip":"203.0.113.7","method":"GET","uri":"/orders/42?page=2","status":"413","processing_time":"-","request_time":"0.013","request_size":"2097152","time":"2026-11-25T15:09:47+00:00"}`},
		{"missing request line and peer", func(r *proxy.AccessRecord) {
			r.ClientIP, r.Method, r.URI, r.Status, r.UpstreamTime = nil, nil, []byte{}, 400, -time.Second
		}, time.UTC,
			`{"ip":"-","method":"-","uri":"-","status":"400","processing_time":"-","request_time":"0.013","request_size":"512","time":"2026-11-25T15:09:47+00:00"}`},
		{"no status, negative size", func(r *proxy.AccessRecord) { r.Status, r.RequestSize = 0, -1 }, time.UTC,
			`{"ip":"203.0.113.7","method":"GET","uri":"/orders/42?page=2","status":"-","processing_time":"0.012","request_time":"0.013","request_size":"-","time":"2026-11-25T15:09:47+00:00"}`},
		{"no times", func(r *proxy.AccessRecord) { r.Start, r.End = time.Time{}, time.Time{} }, time.UTC,
			`{"ip":"203.0.113.7","method":"GET","uri":"/orders/42?page=2","status":"200","processing_time":"0.012","request_time":"-","request_size":"512","time":"-"}`},
		{"clock stepped back", func(r *proxy.AccessRecord) { r.End = t0.Add(-time.Minute) }, time.UTC,
			`{"ip":"203.0.113.7","method":"GET","uri":"/orders/42?page=2","status":"200","processing_time":"0.012","request_time":"0.000","request_size":"512","time":"2026-11-25T15:09:47+00:00"}`},
		{"durations truncate to milliseconds", func(r *proxy.AccessRecord) {
			r.UpstreamTime, r.End = 999*time.Microsecond, t0.Add(61*time.Second+500999*time.Microsecond)
		}, time.UTC,
			`{"ip":"203.0.113.7","method":"GET","uri":"/orders/42?page=2","status":"200","processing_time":"0.000","request_time":"61.500","request_size":"512","time":"2026-11-25T15:09:47+00:00"}`},
		{"zero upstream time is not missing", func(r *proxy.AccessRecord) { r.UpstreamTime, r.End = 0, t0.Add(time.Second) }, time.UTC,
			`{"ip":"203.0.113.7","method":"GET","uri":"/orders/42?page=2","status":"200","processing_time":"0.000","request_time":"1.000","request_size":"512","time":"2026-11-25T15:09:47+00:00"}`},
		{"positive half-hour offset", func(r *proxy.AccessRecord) {}, kolkata,
			`{"ip":"203.0.113.7","method":"GET","uri":"/orders/42?page=2","status":"200","processing_time":"0.012","request_time":"0.013","request_size":"512","time":"2026-11-25T20:39:47+05:30"}`},
		{"negative offset", func(r *proxy.AccessRecord) {}, saoPaulo,
			`{"ip":"203.0.113.7","method":"GET","uri":"/orders/42?page=2","status":"200","processing_time":"0.012","request_time":"0.013","request_size":"512","time":"2026-11-25T12:09:47-03:00"}`},
		{"IPv6 client", func(r *proxy.AccessRecord) { r.ClientIP = []byte("2001:db8::1") }, time.UTC,
			`{"ip":"2001:db8::1","method":"GET","uri":"/orders/42?page=2","status":"200","processing_time":"0.012","request_time":"0.013","request_size":"512","time":"2026-11-25T15:09:47+00:00"}`},
		{"quotes and backslashes", func(r *proxy.AccessRecord) { r.URI = []byte(`/a"b\c"`) }, time.UTC,
			`{"ip":"203.0.113.7","method":"GET","uri":"/a\"b\\c\"","status":"200","processing_time":"0.012","request_time":"0.013","request_size":"512","time":"2026-11-25T15:09:47+00:00"}`},
		{"control bytes and DEL", func(r *proxy.AccessRecord) { r.URI = []byte("/\n\r\t\b\f\x00\x1b[31m\x1f\x7f") }, time.UTC,
			`{"ip":"203.0.113.7","method":"GET","uri":"/\n\r\t\b\f\u0000\u001b[31m\u001f\u007f","status":"200","processing_time":"0.012","request_time":"0.013","request_size":"512","time":"2026-11-25T15:09:47+00:00"}`},
		{"invalid UTF-8 keeps byte values", func(r *proxy.AccessRecord) {
			// stray byte, truncated sequence, overlong '/', UTF-16 surrogate, too high
			r.URI = []byte("/\xff/\xc3/\xc0\xaf/\xed\xa0\x80/\xf4\x90\x80\x80")
		}, time.UTC,
			`{"ip":"203.0.113.7","method":"GET","uri":"/\u00ff/\u00c3/\u00c0\u00af/\u00ed\u00a0\u0080/\u00f4\u0090\u0080\u0080","status":"200","processing_time":"0.012","request_time":"0.013","request_size":"512","time":"2026-11-25T15:09:47+00:00"}`},
		{"valid UTF-8 is copied", func(r *proxy.AccessRecord) { r.URI = []byte("/café/😀/\uFFFD/\u2028") }, time.UTC,
			"{\"ip\":\"203.0.113.7\",\"method\":\"GET\",\"uri\":\"/café/😀/\uFFFD/\u2028\",\"status\":\"200\",\"processing_time\":\"0.012\",\"request_time\":\"0.013\",\"request_size\":\"512\",\"time\":\"2026-11-25T15:09:47+00:00\"}"},
		{"hostile method and address", func(r *proxy.AccessRecord) {
			r.Method, r.ClientIP = []byte(`G"ET`), []byte("\x00\xfe")
		}, time.UTC,
			`{"ip":"\u0000\u00fe","method":"G\"ET","uri":"/orders/42?page=2","status":"200","processing_time":"0.012","request_time":"0.013","request_size":"512","time":"2026-11-25T15:09:47+00:00"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := typical()
			tt.edit(&rec)
			got := appendLine(nil, &rec, tt.loc)
			if want := tt.want + "\n"; string(got) != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
			checkLine(t, got)
		})
	}
}

func TestAppendLineUsesLocalZone(t *testing.T) {
	rec := typical()
	got := AppendLine(nil, &rec)
	want := `"time":"` + t0.Local().Format("2006-01-02T15:04:05-07:00") + `"}` + "\n"
	if !bytes.HasSuffix(got, []byte(want)) {
		t.Errorf("got %s, want it to end with %s", got, want)
	}
}

func TestAppendLineAllocations(t *testing.T) {
	rec := typical()
	rec.URI = []byte("/caf\xc3\xa9?q=\"x\"&bad=\xff")
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(1000, func() { buf = AppendLine(buf[:0], &rec) }); n != 0 {
		t.Errorf("AppendLine allocates %v times per line, want 0", n)
	}
}

// checkLine asserts what every line must be: one line of valid UTF-8 and
// valid JSON, an object of exactly the 8 fields in order, all strings.
func checkLine(t *testing.T, line []byte) map[string]string {
	t.Helper()
	if len(line) == 0 || line[len(line)-1] != '\n' || bytes.Count(line, newline) != 1 {
		t.Fatalf("not exactly one newline-terminated line: %q", line)
	}
	if !utf8.Valid(line) {
		t.Fatalf("line is not valid UTF-8: %q", line)
	}
	if !json.Valid(line) {
		t.Fatalf("line is not valid JSON: %q", line)
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("line does not start an object: %v %v", tok, err)
	}
	for _, want := range fields {
		key, err := dec.Token()
		if err != nil || key != want {
			t.Fatalf("key: got %v (%v), want %q in %q", key, err, want, line)
		}
		v, err := dec.Token()
		if _, ok := v.(string); err != nil || !ok {
			t.Fatalf("value of %q: got %#v (%v), want a string", want, v, err)
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		t.Fatalf("extra content after the 8 fields: %v %v in %q", tok, err, line)
	}
	m := map[string]string{}
	if err := json.Unmarshal(line, &m); err != nil || len(m) != len(fields) {
		t.Fatalf("Unmarshal into map: %v, %d fields", err, len(m))
	}
	return m
}

// rawValues parses a line strictly and undoes this package's escaping
// exactly: \u0000–\u00ff give back one byte, any other escape its
// character in UTF-8. It is how a forensic reader recovers what was sent.
func rawValues(line []byte) ([][]byte, error) {
	var vals [][]byte
	p := bytes.TrimSuffix(line, newline)
	if len(p) < 2 || p[0] != '{' || p[len(p)-1] != '}' {
		return nil, errors.New("not an object")
	}
	p = p[1 : len(p)-1]
	for i, name := range fields {
		if i > 0 {
			if len(p) == 0 || p[0] != ',' {
				return nil, errors.New("missing comma")
			}
			p = p[1:]
		}
		key := `"` + name + `":`
		if !bytes.HasPrefix(p, []byte(key)) {
			return nil, fmt.Errorf("missing key %s", key)
		}
		p = p[len(key):]
		if len(p) == 0 || p[0] != '"' {
			return nil, errors.New("value is not a string")
		}
		p = p[1:]
		var v []byte
		for {
			if len(p) == 0 {
				return nil, errors.New("unterminated string")
			}
			c := p[0]
			if c == '"' {
				p = p[1:]
				break
			}
			if c != '\\' {
				v = append(v, c)
				p = p[1:]
				continue
			}
			if len(p) < 2 {
				return nil, errors.New("dangling backslash")
			}
			switch p[1] {
			case '"', '\\', '/':
				v = append(v, p[1])
			case 'n':
				v = append(v, '\n')
			case 'r':
				v = append(v, '\r')
			case 't':
				v = append(v, '\t')
			case 'b':
				v = append(v, '\b')
			case 'f':
				v = append(v, '\f')
			case 'u':
				if len(p) < 6 {
					return nil, errors.New("short \\u escape")
				}
				n, err := strconv.ParseUint(string(p[2:6]), 16, 16)
				if err != nil {
					return nil, err
				}
				if n <= 0xff {
					v = append(v, byte(n))
				} else {
					v = utf8.AppendRune(v, rune(n))
				}
				p = p[4:]
			default:
				return nil, fmt.Errorf("unknown escape \\%c", p[1])
			}
			p = p[2:]
		}
		vals = append(vals, v)
	}
	if len(p) != 0 {
		return nil, fmt.Errorf("trailing %q", p)
	}
	return vals, nil
}

func FuzzLine(f *testing.F) {
	f.Add([]byte("203.0.113.7"), []byte("GET"), []byte("/orders/42?page=2"), 200, int64(1764083387123456789), int64(13900000), int64(12345600), int64(512), 0)
	f.Add([]byte{}, []byte{}, []byte{}, 0, int64(0), int64(-5), int64(-1), int64(-1), -3600)
	f.Add([]byte("\x00\xff\""), []byte("G\\ET"), []byte("/\n\r\t\x1b\x7f\xc0\xaf\xed\xa0\x80café😀\u2028"), 599, int64(-1<<62), int64(1<<62), int64(1<<62), int64(1<<62), 19800)
	f.Add([]byte("\xf4\x90\x80\x80"), []byte("\xc3"), []byte("\\u00ff"), -7, int64(253402300799999999), int64(1), int64(0), int64(0), -50400)
	f.Fuzz(func(t *testing.T, ip, method, uri []byte, status int, startNs, durNs, upNs, size int64, offset int) {
		rec := proxy.AccessRecord{
			ClientIP: ip, Method: method, URI: uri, Status: status,
			UpstreamTime: time.Duration(upNs), RequestSize: size,
		}
		if startNs != 0 {
			rec.Start = time.Unix(0, startNs)
			rec.End = rec.Start.Add(time.Duration(durNs))
		}
		loc := time.FixedZone("", offset%(18*3600))
		line := appendLine(nil, &rec, loc)
		m := checkLine(t, line)

		raw, err := rawValues(line)
		if err != nil {
			t.Fatalf("%v in %q", err, line)
		}
		for i, sent := range [][]byte{ip, method, uri} {
			want := sent
			if len(want) == 0 {
				want = []byte("-")
			}
			if !bytes.Equal(raw[i], want) {
				t.Errorf("%s: recovered %q from the line, client sent %q", fields[i], raw[i], sent)
			}
		}
		// The numeric fields, against independent formatters.
		wantStatus := "-"
		if status > 0 {
			wantStatus = strconv.Itoa(status)
		}
		wantUp := "-"
		if upNs >= 0 {
			wantUp = fmt.Sprintf("%d.%03d", upNs/1e6/1000, upNs/1e6%1000)
		}
		wantSize := "-"
		if size >= 0 {
			wantSize = strconv.FormatInt(size, 10)
		}
		wantTime, wantReq := "-", "-"
		if startNs != 0 {
			wantTime = rec.Start.In(loc).Format("2006-01-02T15:04:05-07:00")
			d := max(rec.End.Sub(rec.Start), 0).Milliseconds()
			wantReq = fmt.Sprintf("%d.%03d", d/1000, d%1000)
		}
		for name, want := range map[string]string{
			"status": wantStatus, "processing_time": wantUp, "request_time": wantReq,
			"request_size": wantSize, "time": wantTime,
		} {
			if m[name] != want {
				t.Errorf("%s: got %q, want %q", name, m[name], want)
			}
		}
		if strings.ContainsRune(string(line[:len(line)-1]), '\n') {
			t.Errorf("raw newline inside the line")
		}
	})
}
