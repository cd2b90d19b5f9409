package watch

import (
	"go.etcd.io/etcd/pkg/v3/adt"
)

// group indexes watchers by what they watch, so that a change finds its
// watchers without a scan: a map for single keys and an interval tree for
// ranges (etcd's watcherGroup). A from-key range has end "" (adt's affine
// intervals take "" as infinity).
type group struct {
	keys   map[string]watcherSet
	ranges adt.IntervalTree
	size   int
}

type watcherSet map[*watcher]struct{}

func newGroup() *group {
	return &group{keys: make(map[string]watcherSet), ranges: adt.NewIntervalTree()}
}

func (g *group) add(w *watcher) {
	g.size++
	if w.single {
		set := g.keys[w.key]
		if set == nil {
			set = make(watcherSet)
			g.keys[w.key] = set
		}
		set[w] = struct{}{}
		return
	}
	ivl := adt.NewStringAffineInterval(w.key, w.end)
	if iv := g.ranges.Find(ivl); iv != nil {
		iv.Val.(watcherSet)[w] = struct{}{}
		return
	}
	g.ranges.Insert(ivl, watcherSet{w: {}})
}

func (g *group) remove(w *watcher) {
	g.size--
	if w.single {
		set := g.keys[w.key]
		delete(set, w)
		if len(set) == 0 {
			delete(g.keys, w.key)
		}
		return
	}
	ivl := adt.NewStringAffineInterval(w.key, w.end)
	if iv := g.ranges.Find(ivl); iv != nil {
		set := iv.Val.(watcherSet)
		delete(set, w)
		if len(set) == 0 {
			g.ranges.Delete(ivl)
		}
	}
}

// match calls fn with every watcher whose key or range holds key.
func (g *group) match(key string, fn func(w *watcher)) {
	for w := range g.keys[key] {
		fn(w)
	}
	if g.ranges.Len() == 0 {
		return
	}
	g.ranges.Visit(adt.NewStringAffinePoint(key), func(iv *adt.IntervalValue) bool {
		for w := range iv.Val.(watcherSet) {
			fn(w)
		}
		return true
	})
}

// contains reports whether any watcher of the group watches key.
func (g *group) contains(key string) bool {
	if _, ok := g.keys[key]; ok {
		return true
	}
	return g.ranges.Len() > 0 && g.ranges.Intersects(adt.NewStringAffinePoint(key))
}
