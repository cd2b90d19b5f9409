package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// promSeries is one line of a Prometheus text page: a name, its labels, a value.
type promSeries struct {
	name   string
	labels map[string]string
	value  float64
}

// scrape is one reading of /metrics.
type scrape struct {
	at     time.Time
	series []promSeries
}

// sum adds the values of the series called name whose labels satisfy keep
// (nil keeps all).
func (s scrape) sum(name string, keep func(labels map[string]string) bool) float64 {
	total := 0.0
	for _, x := range s.series {
		if x.name == name && (keep == nil || keep(x.labels)) {
			total += x.value
		}
	}
	return total
}

// fetchMetrics reads and parses url (a /metrics page).
func fetchMetrics(c *http.Client, url string) (scrape, error) {
	at := time.Now()
	resp, err := c.Get(url)
	if err != nil {
		return scrape{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return scrape{}, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	ss, err := parseMetrics(resp.Body)
	return scrape{at: at, series: ss}, err
}

// parseMetrics reads Prometheus's text format: one series a line, `name`
// or `name{label="value",...}`, then the value (and an optional timestamp,
// ignored); lines starting with # are comments. The harness is a module of
// its own without Prometheus's parser, and this is all it needs.
func parseMetrics(r io.Reader) ([]promSeries, error) {
	var out []promSeries
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		s, err := parseSeries(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w: %q", n, err, line)
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

func parseSeries(line string) (promSeries, error) {
	var s promSeries
	end := strings.IndexAny(line, "{ ")
	if end <= 0 {
		return s, errors.New("no value")
	}
	s.name, line = line[:end], line[end:]
	if line[0] == '{' {
		var err error
		if s.labels, line, err = parseLabels(line[1:]); err != nil {
			return s, err
		}
	}
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return s, errors.New("no value")
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	s.value = v
	return s, err
}

// parseLabels reads `a="b",c="d"}` and returns the labels and what follows
// the closing brace.
func parseLabels(in string) (map[string]string, string, error) {
	labels := map[string]string{}
	for {
		in = strings.TrimLeft(in, " ,")
		if strings.HasPrefix(in, "}") {
			return labels, in[1:], nil
		}
		eq := strings.Index(in, `="`)
		if eq <= 0 {
			return nil, "", errors.New("bad label")
		}
		name := in[:eq]
		in = in[eq+2:]
		var v strings.Builder
		closed := false
		for i := 0; i < len(in); i++ {
			c := in[i]
			if c == '\\' && i+1 < len(in) {
				i++
				switch in[i] {
				case 'n':
					v.WriteByte('\n')
				default:
					v.WriteByte(in[i])
				}
				continue
			}
			if c == '"' {
				in, closed = in[i+1:], true
				break
			}
			v.WriteByte(c)
		}
		if !closed {
			return nil, "", errors.New("unterminated label value")
		}
		labels[name] = v.String()
	}
}
