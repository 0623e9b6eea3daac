package forecast

import (
	"math"
	"math/rand/v2"
	"slices"
)

// This file is the learner behind GBRT: histogram-based gradient boosting of
// depth-limited regression trees (Friedman, "Greedy function approximation: a gradient
// boosting machine", Annals of Statistics 29(5), 2001; "Stochastic gradient boosting",
// CSDA 38(4), 2002), with features quantised into at most 256 bins once, as LightGBM
// (Ke et al., NIPS 2017) and XGBoost's "hist" method do. It knows nothing of time
// series: it boosts a table of float32 features against a target.

// Loss is the loss a booster minimises.
type Loss int

const (
	// LossSquared is the squared error; the model estimates the conditional mean.
	LossSquared Loss = iota
	// LossPinball is the pinball (quantile) loss at a level q; the model estimates
	// the conditional q-quantile. At q = 0.5 it is the absolute error (LAD).
	LossPinball
)

// boostParams are the learner's settings; GBRT fills them in from its options.
type boostParams struct {
	trees     int
	depth     int
	rate      float64
	minLeaf   int
	subsample float64
	loss      Loss
	quantile  float64 // the level, for LossPinball
	seed      uint64
}

// table is a training set: n rows of nf features, row-major, with targets and an
// offset, the prediction the booster starts from, row by row.
type table struct {
	n, nf  int
	x      []float32 // x[i*nf+f]
	y      []float64
	offset []float64
}

// binned is a table quantised for tree growth: bins[i*nf+f] is the bin of x[i*nf+f],
// and edges[f][b] the largest value in bin b of feature f (the last bin has no edge).
// A value v is in the first bin b with v <= edges[f][b].
type binned struct {
	n, nf int
	nbins []int // bins used by each feature, at most maxBins
	edges [][]float32
	bins  []uint8
	// stride is the histogram width of one feature: the largest of nbins.
	stride int
}

// maxBins is the most bins a feature can have, so that a bin fits in a byte.
const maxBins = 256

// quantise bins every feature of t into at most nb bins at quantiles of a sample of
// its values, the approach of LightGBM and XGBoost's hist method: split search then
// scans nb candidate thresholds instead of every distinct value, and rows take a byte
// per feature. Ties never straddle a bin edge.
func quantise(t *table, nb int, seed uint64) *binned {
	nb = min(max(nb, 2), maxBins)
	b := &binned{n: t.n, nf: t.nf, nbins: make([]int, t.nf), edges: make([][]float32, t.nf), bins: make([]uint8, t.n*t.nf)}
	// Edges from a sample of rows: 50 per bin gives quantiles to within a couple of
	// percent, which is all a split threshold needs.
	rows := sampleRows(t.n, 50*nb, seed)
	vals := make([]float32, len(rows))
	for f := range t.nf {
		for j, i := range rows {
			vals[j] = t.x[i*t.nf+f]
		}
		slices.Sort(vals)
		var edges []float32
		for k := 1; k < nb; k++ {
			e := vals[k*len(vals)/nb]
			// Each edge must leave values above it, and edges must increase.
			if e >= vals[len(vals)-1] {
				break
			}
			if len(edges) > 0 && e <= edges[len(edges)-1] {
				continue
			}
			edges = append(edges, e)
		}
		b.edges[f] = edges
		b.nbins[f] = len(edges) + 1
		b.stride = max(b.stride, b.nbins[f])
	}
	for i := range t.n {
		for f := range t.nf {
			b.bins[i*t.nf+f] = uint8(binOf(b.edges[f], t.x[i*t.nf+f]))
		}
	}
	return b
}

// binOf is the first bin whose edge is at least v.
func binOf(edges []float32, v float32) int {
	lo, hi := 0, len(edges)
	for lo < hi {
		mid := (lo + hi) / 2
		if v <= edges[mid] {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// sampleRows returns up to k distinct row numbers out of n, sorted, chosen with a
// fixed seed.
func sampleRows(n, k int, seed uint64) []int {
	if k >= n {
		rows := make([]int, n)
		for i := range rows {
			rows[i] = i
		}
		return rows
	}
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	rows := r.Perm(n)[:k]
	slices.Sort(rows)
	return rows
}

// tree is a regression tree of a fixed depth d, complete and in heap order: inner
// node i (of 2^d−1) sends a row to child 2i+1 when its feature is at most threshold
// (its bin at most bin) and to 2i+2 otherwise, and leaf j (of 2^d) holds leaf[j]. A
// node that was not split passes every row left (threshold +Inf, bin 255), and all
// the leaves below it hold its value. Fixed-depth walks have no data-dependent loop
// exit, and the binned walk needs no branch at all.
type tree struct {
	depth     int
	feature   []uint16
	bin       []uint8
	threshold []float32
	leaf      []float64
}

func newTree(depth int) tree {
	inner := 1<<depth - 1
	t := tree{depth: depth, feature: make([]uint16, inner), bin: make([]uint8, inner),
		threshold: make([]float32, inner), leaf: make([]float64, inner+1)}
	for i := range inner {
		t.bin[i] = maxBins - 1
		t.threshold[i] = float32(math.Inf(1))
	}
	return t
}

// predict walks x, one row of raw features, to its leaf. A NaN goes left.
func (t *tree) predict(x []float32) float64 {
	i := 0
	for range t.depth {
		if x[t.feature[i]] > t.threshold[i] {
			i = 2*i + 2
		} else {
			i = 2*i + 1
		}
	}
	return t.leaf[i-len(t.feature)]
}

// addBinned adds the tree's value to F[i] for every row of a binned table, walking
// four rows at a time so that their chains of dependent loads overlap.
func (t *tree) addBinned(bins []uint8, nf int, F []float64) {
	n := len(F)
	feat, bin := t.feature, t.bin
	i := 0
	for ; i+4 <= n; i += 4 {
		r0 := bins[i*nf : i*nf+nf]
		r1 := bins[(i+1)*nf : (i+1)*nf+nf]
		r2 := bins[(i+2)*nf : (i+2)*nf+nf]
		r3 := bins[(i+3)*nf : (i+3)*nf+nf]
		var a, b, c, d int
		for range t.depth {
			a = 2*a + 1 + b2i(r0[feat[a]] > bin[a])
			b = 2*b + 1 + b2i(r1[feat[b]] > bin[b])
			c = 2*c + 1 + b2i(r2[feat[c]] > bin[c])
			d = 2*d + 1 + b2i(r3[feat[d]] > bin[d])
		}
		off := len(feat)
		F[i] += t.leaf[a-off]
		F[i+1] += t.leaf[b-off]
		F[i+2] += t.leaf[c-off]
		F[i+3] += t.leaf[d-off]
	}
	for ; i < n; i++ {
		r := bins[i*nf : i*nf+nf]
		a := 0
		for range t.depth {
			a = 2*a + 1 + b2i(r[feat[a]] > bin[a])
		}
		F[i] += t.leaf[a-len(feat)]
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// booster is a boosted ensemble: base plus the sum of the trees' values.
type booster struct {
	base  float64
	trees []tree
}

// predict is the booster's value at a row of raw features, before the row's offset.
func (b *booster) predict(x []float32) float64 {
	s := b.base
	for i := range b.trees {
		s += b.trees[i].predict(x)
	}
	return s
}

// hist is a node's histogram: for each feature and bin, the sum of the gradients and
// the number of rows there, interleaved so that one update touches one cache line:
// h[2k] and h[2k+1] for k = f*stride+bin.
type hist []float64

// grower grows one tree at a time on a subsample of a binned table. The subsample is
// first copied into compact buffers (its rows' bins, gradients and residuals, indexed
// 0..len−1), so that growing reads a megabyte or two, mostly in cache, instead of rows
// scattered over the whole table.
type grower struct {
	b *binned
	p boostParams
	// Over the subsample: bins row-major, negative gradient and residual y − F (for
	// pinball leaves).
	bins  []uint8
	grad  []float64
	resid []float64
	// rows is the subsample's local indexes, partitioned node by node.
	rows   []int32
	pool   []hist
	scrtch []float64
}

// load copies the sampled rows of the table into the grower's buffers.
func (g *grower) load(sample []int32, grad, resid []float64) {
	nf := g.b.nf
	ns := len(sample)
	g.bins = slices.Grow(g.bins[:0], ns*nf)[:ns*nf]
	g.grad = slices.Grow(g.grad[:0], ns)[:ns]
	g.resid = slices.Grow(g.resid[:0], ns)[:ns]
	g.rows = slices.Grow(g.rows[:0], ns)[:ns]
	for j, i := range sample {
		copy(g.bins[j*nf:j*nf+nf], g.b.bins[int(i)*nf:int(i)*nf+nf])
		g.grad[j], g.resid[j] = grad[i], resid[i]
		g.rows[j] = int32(j)
	}
}

func (g *grower) getHist() hist {
	if n := len(g.pool); n > 0 {
		h := g.pool[n-1]
		g.pool = g.pool[:n-1]
		clear(h)
		return h
	}
	return make(hist, 2*g.b.nf*g.b.stride)
}

func (g *grower) putHist(h hist) { g.pool = append(g.pool, h) }

// build fills h from the rows: each row's bins are read once, contiguously, and the
// histogram (nf×stride entries) stays in cache.
func (g *grower) build(h hist, rows []int32) {
	nf, stride, bins := g.b.nf, g.b.stride, g.bins
	for _, i := range rows {
		gi := g.grad[i]
		row := bins[int(i)*nf : int(i)*nf+nf]
		for f, bin := range row {
			k := 2 * (f*stride + int(bin))
			e := h[k : k+2 : k+2]
			e[0] += gi
			e[1]++
		}
	}
}

// split is a candidate split of a node.
type split struct {
	feature int
	bin     int
	gain    float64
}

// bestSplit scans every feature's bins for the split with the largest reduction in
// squared error of the gradient, GL²/nL + GR²/nR − G²/n (Friedman 2001, eq. 35 for the
// least-squares fit of a tree to the pseudo-responses), subject to minLeaf rows a side.
// Counts are float64 since they come from the histogram.
func (g *grower) bestSplit(h hist, sumG, n float64) split {
	best := split{feature: -1}
	parent := sumG * sumG / n
	minLeaf := g.minLeaf()
	for f := range g.b.nf {
		off := f * g.b.stride
		var gl, nl float64
		for bin := 0; bin < g.b.nbins[f]-1; bin++ {
			gl += h[2*(off+bin)]
			nl += h[2*(off+bin)+1]
			if nl < minLeaf {
				continue
			}
			nr := n - nl
			if nr < minLeaf {
				break
			}
			gr := sumG - gl
			gain := gl*gl/nl + gr*gr/nr - parent
			if gain > best.gain+1e-12*math.Abs(parent) {
				best = split{feature: f, bin: bin, gain: gain}
			}
		}
	}
	return best
}

// minLeaf is the fewest rows in a leaf; at least one.
func (g *grower) minLeaf() float64 { return float64(max(g.p.minLeaf, 1)) }

// growing is a node waiting to be split: its heap index, its rows (a segment of
// g.rows), its histogram and the sum of its gradients.
type growing struct {
	id     int
	lo, hi int
	h      hist
	sumG   float64
}

// grow fits a tree to g.grad on g.rows level by level, to depth p.depth. The smaller
// child's histogram is built and the larger's is the parent's minus it, LightGBM's
// subtraction trick, which halves the work below the root. Leaf values are then set by
// setLeaf from each leaf's rows.
func (g *grower) grow(setLeaf func(rows []int32) float64) tree {
	t := newTree(g.p.depth)
	root := growing{lo: 0, hi: len(g.rows), h: g.getHist()}
	g.build(root.h, g.rows)
	for _, i := range g.rows {
		root.sumG += g.grad[i]
	}
	level := []growing{root}
	var leaves []growing
	nf := g.b.nf
	for range g.p.depth {
		var next []growing
		for _, nd := range level {
			s := split{feature: -1}
			if n := float64(nd.hi - nd.lo); n >= 2*g.minLeaf() {
				s = g.bestSplit(nd.h, nd.sumG, n)
			}
			if s.feature < 0 {
				g.putHist(nd.h)
				leaves = append(leaves, nd)
				continue
			}
			// Partition the node's rows in place, left those with bin <= s.bin. The
			// order within each child depends only on the data, so the same input
			// grows the same tree.
			seg := g.rows[nd.lo:nd.hi]
			i, j := 0, len(seg)
			for i < j {
				if g.bins[int(seg[i])*nf+s.feature] <= uint8(s.bin) {
					i++
				} else {
					j--
					seg[i], seg[j] = seg[j], seg[i]
				}
			}
			left := growing{id: 2*nd.id + 1, lo: nd.lo, hi: nd.lo + i}
			right := growing{id: 2*nd.id + 2, lo: nd.lo + i, hi: nd.hi}
			small, large := &left, &right
			if left.hi-left.lo > right.hi-right.lo {
				small, large = &right, &left
			}
			small.h = g.getHist()
			g.build(small.h, g.rows[small.lo:small.hi])
			large.h = nd.h
			for k, v := range small.h {
				large.h[k] -= v
			}
			for _, r := range g.rows[left.lo:left.hi] {
				left.sumG += g.grad[r]
			}
			right.sumG = nd.sumG - left.sumG
			t.feature[nd.id] = uint16(s.feature)
			t.bin[nd.id] = uint8(s.bin)
			t.threshold[nd.id] = g.b.edges[s.feature][s.bin]
			next = append(next, left, right)
		}
		level = next
	}
	for _, nd := range level {
		g.putHist(nd.h)
		leaves = append(leaves, nd)
	}
	// A leaf at depth e < d owns the 2^(d−e) leaves below it, leftmost first.
	for _, nd := range leaves {
		v := setLeaf(g.rows[nd.lo:nd.hi])
		first, span := nd.id, 1
		for first < len(t.feature) {
			first, span = 2*first+1, 2*span
		}
		for j := range span {
			t.leaf[first-len(t.feature)+j] = v
		}
	}
	return t
}

// boost fits a booster to t (binned as b) with the loss of p. Each round takes a
// fresh subsample of the rows without replacement (Friedman 2002), fits a tree to the
// negative gradient of the loss on it, sets each leaf's value by the loss's own line
// search, and adds the tree shrunk by the learning rate. F, the current prediction of
// every row (offset included), is returned too.
func boost(t *table, b *binned, p boostParams) (*booster, []float64) {
	if p.loss == LossPinball && !(p.quantile > 0 && p.quantile < 1) {
		panic("forecast: pinball loss needs a quantile in (0, 1)")
	}
	r := rand.New(rand.NewPCG(p.seed, 0xda3e39cb94b95bdb))
	g := &grower{b: b, p: p}
	// Start from the best constant on top of the offsets: the mean of the residuals for
	// squared loss, their q-quantile for pinball loss (Friedman 2001, Algorithm 2 and
	// the quantile version of Algorithm 3).
	resid := make([]float64, t.n)
	grad := make([]float64, t.n)
	sample := make([]int32, t.n)
	for i := range t.n {
		sample[i] = int32(i)
		resid[i] = t.y[i] - t.offset[i]
		grad[i] = resid[i]
	}
	g.load(sample, grad, resid)
	bst := &booster{}
	if p.loss == LossPinball {
		bst.base = g.leafQuantile(g.rows, p.quantile)
	} else {
		bst.base = g.leafMean(g.rows)
	}
	F := make([]float64, t.n)
	for i := range F {
		F[i] = t.offset[i] + bst.base
	}
	for range p.trees {
		sample = sample[:0]
		// Bernoulli sampling, a row kept when a 32-bit draw falls below the share.
		cut := uint64(p.subsample * (1 << 32))
		for i := 0; i < t.n; i += 2 {
			u := r.Uint64()
			if u&(1<<32-1) < cut {
				sample = append(sample, int32(i))
			}
			if i+1 < t.n && u>>32 < cut {
				sample = append(sample, int32(i+1))
			}
		}
		if len(sample) < 2*max(p.minLeaf, 1) {
			break
		}
		var setLeaf func(rows []int32) float64
		switch p.loss {
		case LossPinball:
			// Negative gradient of the pinball loss: q above the prediction, q−1 at or
			// below it. The tree is fitted to it by least squares, then each leaf takes
			// the q-quantile of its rows' residuals, the exact line search for this
			// loss (Friedman 2001, §4.6 for LAD, whose leaves take the median).
			q := p.quantile
			for _, i := range sample {
				resid[i] = t.y[i] - F[i]
				if resid[i] > 0 {
					grad[i] = q
				} else {
					grad[i] = q - 1
				}
			}
			setLeaf = func(rows []int32) float64 {
				return p.rate * g.leafQuantile(rows, q)
			}
		default:
			// Squared loss: the negative gradient is the residual, and the Newton step
			// (here also the exact line search) is the leaf's mean residual.
			for _, i := range sample {
				grad[i] = t.y[i] - F[i]
			}
			setLeaf = func(rows []int32) float64 { return p.rate * g.leafMean(rows) }
		}
		g.load(sample, grad, resid)
		tr := g.grow(setLeaf)
		bst.trees = append(bst.trees, tr)
		tr.addBinned(b.bins, b.nf, F)
	}
	return bst, F
}

// leafMean is the mean gradient of the rows: their mean residual for squared loss.
func (g *grower) leafMean(rows []int32) float64 {
	if len(rows) == 0 {
		return 0
	}
	var sum float64
	for _, i := range rows {
		sum += g.grad[i]
	}
	return sum / float64(len(rows))
}

// leafQuantile is the q-quantile of the rows' residuals.
func (g *grower) leafQuantile(rows []int32, q float64) float64 {
	g.scrtch = g.scrtch[:0]
	for _, i := range rows {
		g.scrtch = append(g.scrtch, g.resid[i])
	}
	return quantileOf(g.scrtch, q)
}

// quantileOf returns the q-quantile of v, the value at rank ⌈q·n⌉ (the lower
// empirical quantile, which minimises the pinball loss), reordering v.
func quantileOf(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	k := int(math.Ceil(q*float64(len(v)))) - 1
	k = min(max(k, 0), len(v)-1)
	return selectKth(v, k)
}

// selectKth returns the k-th smallest of v (from 0) by quickselect, reordering v.
// The pivot is the median of three, so sorted input is not the worst case.
func selectKth(v []float64, k int) float64 {
	lo, hi := 0, len(v)-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		if v[mid] < v[lo] {
			v[mid], v[lo] = v[lo], v[mid]
		}
		if v[hi] < v[lo] {
			v[hi], v[lo] = v[lo], v[hi]
		}
		if v[hi] < v[mid] {
			v[hi], v[mid] = v[mid], v[hi]
		}
		pivot := v[mid]
		i, j := lo, hi
		for i <= j {
			for v[i] < pivot {
				i++
			}
			for v[j] > pivot {
				j--
			}
			if i <= j {
				v[i], v[j] = v[j], v[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return v[k]
		}
	}
	return v[k]
}
