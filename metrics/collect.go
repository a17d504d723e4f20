package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// factory registers metrics under the one namespace.
type factory struct{ reg *prometheus.Registry }

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help})
	f.reg.MustRegister(c)
	return c
}

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

func (f factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help})
	f.reg.MustRegister(g)
	return g
}

func (f factory) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	f.reg.MustRegister(g)
	return g
}

func (f factory) histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets})
	f.reg.MustRegister(h)
	return h
}

func (f factory) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets}, labels)
	f.reg.MustRegister(h)
	return h
}

// gaugeValue reads a gauge's current value.
func gaugeValue(g prometheus.Gauge) float64 {
	var d dto.Metric
	if err := g.Write(&d); err != nil || d.Gauge == nil {
		return 0
	}
	return d.Gauge.GetValue()
}

var (
	descDBBytes = prometheus.NewDesc(Namespace+"_storage_database_bytes",
		"Size of the database file (pages in use times page size; the WAL excluded).", nil, nil)
	descObjects = prometheus.NewDesc(Namespace+"_storage_objects",
		"Objects in a collection (each counted once, by its latest version).", []string{"collection"}, nil)
	descVersions = prometheus.NewDesc(Namespace+"_storage_versions",
		"Object versions held by a collection.", []string{"collection"}, nil)
	descNewest = prometheus.NewDesc(Namespace+"_storage_newest_date_added_timestamp_seconds",
		"Newest date_added in a collection (Unix time); absent when the collection is empty.", []string{"collection"}, nil)
	descUp = prometheus.NewDesc(Namespace+"_storage_stats_up",
		"1 when the last read of the storage statistics succeeded, else 0.", nil, nil)
)

// storageCollector reads the storage statistics at scrape time, cached for ttl.
type storageCollector struct {
	stats func(ctx context.Context) (StorageStats, error)
	ttl   time.Duration
	now   func() time.Time

	mu      sync.Mutex
	cached  StorageStats
	ok      bool
	fetched time.Time
}

func (c *storageCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descDBBytes
	ch <- descObjects
	ch <- descVersions
	ch <- descNewest
	ch <- descUp
}

func (c *storageCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.fetched.IsZero() || now.Sub(c.fetched) >= c.ttl || now.Before(c.fetched) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		st, err := c.stats(ctx)
		cancel()
		c.fetched = now
		c.ok = err == nil
		if err == nil {
			c.cached = st
		}
	}
	up := 0.0
	if c.ok {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up)
	if !c.ok {
		return
	}
	ch <- prometheus.MustNewConstMetric(descDBBytes, prometheus.GaugeValue, float64(c.cached.DatabaseBytes))
	for _, col := range c.cached.Collections {
		ch <- prometheus.MustNewConstMetric(descObjects, prometheus.GaugeValue, float64(col.Objects), col.Collection)
		ch <- prometheus.MustNewConstMetric(descVersions, prometheus.GaugeValue, float64(col.Versions), col.Collection)
		if col.NewestDateAdded > 0 {
			ch <- prometheus.MustNewConstMetric(descNewest, prometheus.GaugeValue, float64(col.NewestDateAdded)/1e6, col.Collection)
		}
	}
}
