// Open-loop load at a fixed rate for the webhook benchmarks (wrk2 is not packaged in Debian): sends one POST every
// 1/RATE s over CONNS keep-alive HTTPS connections and reports latency quantiles. Each latency runs from the moment
// the request was due, so a stalled server is charged for the requests queued behind it (no coordinated omission).
// Go rather than Node: a Node client's own timers, GC and TLS work showed up as 40-60 ms p99 even against a no-op
// server, which hid the server's tail. The connections are opened (one warm-up request each) before the clock starts.
// The benchmarks build it into ~/.cache/lanyard/bench with the machine's Go; the binary is never committed.
// Usage: fixed-rate URL BODY_FILE RATE SECONDS [CONNS]  → prints {"sent","errors","p50","p90","p99","p999","max"} in ms
package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"
)

func main() {
	if len(os.Args) < 5 {
		fmt.Fprintln(os.Stderr, "usage: fixed-rate URL BODY_FILE RATE SECONDS [CONNS]")
		os.Exit(2)
	}
	url := os.Args[1]
	body, err := os.ReadFile(os.Args[2])
	must(err)
	rate, err := strconv.ParseFloat(os.Args[3], 64)
	must(err)
	seconds, err := strconv.ParseFloat(os.Args[4], 64)
	must(err)
	conns := 16
	if len(os.Args) > 5 {
		conns, err = strconv.Atoi(os.Args[5])
		must(err)
	}
	client := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{InsecureSkipVerify: true}, // the benchmark's own throwaway CA
			MaxConnsPerHost:     conns,
			MaxIdleConnsPerHost: conns,
			TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{}, // HTTP/1.1, as the API server's webhook client
		},
	}
	post := func() bool {
		resp, err := client.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}

	var warm sync.WaitGroup
	for i := 0; i < conns; i++ {
		warm.Add(1)
		go func() { defer warm.Done(); post() }()
	}
	warm.Wait()

	total := int(rate*seconds + 0.5)
	if total < 1 {
		fmt.Fprintln(os.Stderr, "RATE × SECONDS must be at least 1")
		os.Exit(2)
	}
	interval := time.Duration(float64(time.Second) / rate)
	latencies := make([]float64, total)
	failed := make([]bool, total)
	var done sync.WaitGroup
	start := time.Now().Add(10 * time.Millisecond)
	for i := 0; i < total; i++ {
		due := start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(due))
		done.Add(1)
		go func(i int, due time.Time) {
			defer done.Done()
			failed[i] = !post()
			latencies[i] = float64(time.Since(due)) / float64(time.Millisecond)
		}(i, due)
	}
	done.Wait()

	errors := 0
	for _, f := range failed {
		if f {
			errors++
		}
	}
	sort.Float64s(latencies)
	q := func(p float64) float64 {
		i := int(p * float64(len(latencies)))
		if i >= len(latencies) {
			i = len(latencies) - 1
		}
		return latencies[i]
	}
	out, _ := json.Marshal(map[string]any{
		"sent": total, "errors": errors,
		"p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "p999": q(0.999), "max": latencies[len(latencies)-1],
	})
	fmt.Println(string(out))
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}
