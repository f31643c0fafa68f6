package main

// A grouped bar chart in plain SVG (no scripts, fonts or other assets),
// laid out so that nothing collides: the title wraps to the width, the
// legend flows in rows above the plot, category labels wrap under their
// group, value labels stand above their bar (turned upright where the bar
// is narrower than the label, left out where even that does not fit) with
// headroom reserved for them, and the chart widens rather than squeezes.
// Text sizes come from textWidth, a deliberately generous estimate.

import (
	"fmt"
	"html"
	"math"
	"strings"
	"unicode/utf8"
)

// textWidth estimates the width of s at a font size: 0.6 of the size per
// character, wider than the average sans-serif glyph.
func textWidth(s string, size float64) float64 {
	return 0.6 * size * float64(utf8.RuneCountInString(s))
}

// chartSpec is what a chart shows.
type chartSpec struct {
	title  string
	note   string   // a second, smaller line under the title: what the bars and whiskers are
	series []string // legend entries, in bar order; colours by index
	groups []chartGroup
	tick   func(float64) string // y axis labels
	ref    float64              // a dashed reference line at this value (the baseline's 1x), 0 for none
}

// chartGroup is one category along the x axis.
type chartGroup struct {
	label string
	bars  []chartBar
}

// chartBar is one bar: series is its legend entry; lo and hi, when hi > 0,
// draw a whisker (min-max of the repetitions).
type chartBar struct {
	series        int
	value, lo, hi float64
	label, tip    string
}

var chartColors = []string{"#9e9e9e", "#90caf9", "#1e88e5", "#0d47a1", "#ef6c00", "#6a1b9a", "#2e7d32", "#c62828", "#00838f", "#f9a825"}

const (
	chartMinW    = 900.0
	chartMargin  = 16.0
	titleSize    = 15.0
	noteSize     = 11.0
	labelSize    = 12.0 // legend, axis and category labels
	valueSize    = 10.0
	lineGap      = 1.3 // line height over font size
	minBarW      = 14.0
	plotMinH     = 240.0
	legendSwatch = 12.0
)

// wrapText breaks s into lines no wider than width at size (a word wider
// than width gets a line of its own).
func wrapText(s string, size, width float64) []string {
	var lines []string
	cur := ""
	for _, w := range strings.Fields(s) {
		if cur != "" && textWidth(cur+" "+w, size) > width {
			lines = append(lines, cur)
			cur = ""
		}
		if cur != "" {
			cur += " "
		}
		cur += w
	}
	if cur != "" {
		lines = append(lines, cur)
	}
	return lines
}

// widestWord is the width of the longest word of s.
func widestWord(s string, size float64) float64 {
	w := 0.0
	for _, f := range strings.Fields(s) {
		w = math.Max(w, textWidth(f, size))
	}
	return w
}

// chartLayout holds the measures a chart is drawn with.
type chartLayout struct {
	w, h           float64
	left, plotW    float64 // plot area, x
	top, plotH     float64 // plot area, y (top edge and height)
	barW, groupW   float64
	maxBars        int
	valueMode      int // 0: no value labels, 1: horizontal, 2: upright
	axisMax        float64
	ticks          []float64
	title, note    []string
	legendRows     [][]int // series indexes per row
	catLines       [][]string
	headroom       float64 // room above the highest bar for its label
	legendY, catY0 float64
}

const (
	valueNone = iota
	valueFlat
	valueUpright
)

// layout measures everything before anything is drawn.
func (c *chartSpec) layout() *chartLayout {
	l := &chartLayout{}
	for _, g := range c.groups {
		l.maxBars = max(l.maxBars, len(g.bars))
	}
	l.maxBars = max(l.maxBars, 1)
	widestValue := 0.0
	for _, g := range c.groups {
		for _, b := range g.bars {
			widestValue = math.Max(widestValue, textWidth(b.label, valueSize))
		}
	}
	// The widest the y tick labels can be, for the left margin: measured
	// again once the axis is known.
	l.left = chartMargin + textWidth("0000.0x", labelSize) + 8
	// Bar width: the room at chartMinW, at least minBarW, and wide enough
	// for every group's longest word under it.
	groups := float64(max(len(c.groups), 1))
	slots := float64(l.maxBars) + 1 // one bar's width between groups
	l.barW = math.Min(80, math.Max(minBarW, (chartMinW-l.left-chartMargin)/groups/slots))
	switch {
	case widestValue+2 <= l.barW:
		l.valueMode = valueFlat
	case valueSize*1.05+2 <= l.barW:
		l.valueMode = valueUpright
	}
	// A group is as wide as its bars and its label's longest word.
	l.groupW = l.barW * slots
	for _, g := range c.groups {
		l.groupW = math.Max(l.groupW, widestWord(g.label, labelSize)+8)
	}
	l.plotW = l.groupW * groups
	l.w = math.Max(chartMinW, l.left+l.plotW+chartMargin)
	for _, s := range c.series {
		l.w = math.Max(l.w, 2*chartMargin+legendItemW(s))
	}

	inner := l.w - 2*chartMargin
	l.title = wrapText(c.title, titleSize, inner)
	l.note = wrapText(c.note, noteSize, inner)
	l.legendRows = legendRows(c.series, inner)

	y := chartMargin + float64(len(l.title))*titleSize*lineGap + float64(len(l.note))*noteSize*lineGap
	l.legendY = y + 6
	y = l.legendY + float64(len(l.legendRows))*labelSize*lineGap + 10
	l.top = y + labelSize // room for the top tick label's ascent
	switch l.valueMode {
	case valueFlat:
		l.headroom = valueSize*1.05 + 4
	case valueUpright:
		l.headroom = widestValue + 4
	}
	l.plotH = math.Max(plotMinH, l.headroom+160)
	l.scale(c)
	for _, g := range c.groups {
		l.catLines = append(l.catLines, wrapText(g.label, labelSize, l.groupW-8))
	}
	catLines := 0
	for _, ls := range l.catLines {
		catLines = max(catLines, len(ls))
	}
	l.catY0 = l.top + l.plotH + 6 + labelSize
	l.h = l.catY0 + float64(catLines-1)*labelSize*lineGap + labelSize*0.25 + chartMargin
	return l
}

// legendRows flows the legend entries into rows no wider than width.
func legendRows(series []string, width float64) [][]int {
	var rows [][]int
	x := 0.0
	for i, s := range series {
		w := legendItemW(s)
		if len(rows) == 0 || (x > 0 && x+w > width) {
			rows = append(rows, nil)
			x = 0
		}
		rows[len(rows)-1] = append(rows[len(rows)-1], i)
		x += w
	}
	return rows
}

func legendItemW(s string) float64 { return legendSwatch + 4 + textWidth(s, labelSize) + 18 }

// scale picks the y axis: nice ticks up to a maximum that leaves every
// bar's label (or whisker) its headroom inside the plot.
func (l *chartLayout) scale(c *chartSpec) {
	need := 0.0
	for _, g := range c.groups {
		for _, b := range g.bars {
			top := math.Max(b.value, b.hi)
			// top/axisMax*plotH + headroom <= plotH
			need = math.Max(need, top*l.plotH/(l.plotH-l.headroom))
		}
	}
	need = math.Max(need, c.ref)
	if need <= 0 {
		need = 1
	}
	maxTicks := math.Floor(l.plotH / (labelSize * 2.5))
	step := niceStep(need / maxTicks)
	for need/step > maxTicks {
		step = niceStep(step * 1.01)
	}
	l.axisMax = math.Ceil(need/step-1e-9) * step
	l.ticks = nil
	for i := 0; float64(i)*step <= l.axisMax+step*1e-9; i++ {
		l.ticks = append(l.ticks, float64(i)*step)
	}
	widest := 0.0
	for _, t := range l.ticks {
		widest = math.Max(widest, textWidth(c.tick(t), labelSize))
	}
	l.left = chartMargin + widest + 8
	l.w = math.Max(l.w, l.left+l.plotW+chartMargin)
	l.plotW = l.w - l.left - chartMargin // spread the groups over the width
	l.groupW = l.plotW / float64(max(len(c.groups), 1))
}

// niceStep is the smallest 1, 2, 2.5 or 5 times a power of ten >= v.
func niceStep(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// y is the vertical position of value v.
func (l *chartLayout) y(v float64) float64 { return l.top + l.plotH - v/l.axisMax*l.plotH }

// svg renders the chart.
func (c *chartSpec) svg() string {
	l := c.layout()
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="%g">`+"\n",
		math.Ceil(l.w), math.Ceil(l.h), math.Ceil(l.w), math.Ceil(l.h), labelSize)
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>` + "\n")
	y := chartMargin
	for _, line := range l.title {
		y += titleSize
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="%g" font-weight="bold">%s</text>`+"\n", chartMargin, y, titleSize, esc(line))
		y += titleSize * (lineGap - 1)
	}
	for _, line := range l.note {
		y += noteSize
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="%g" fill="#555">%s</text>`+"\n", chartMargin, y, noteSize, esc(line))
		y += noteSize * (lineGap - 1)
	}
	c.drawLegend(&b, l)
	c.drawAxis(&b, l)
	c.drawBars(&b, l)
	b.WriteString("</svg>\n")
	return b.String()
}

func esc(s string) string { return html.EscapeString(s) }

func (c *chartSpec) drawLegend(b *strings.Builder, l *chartLayout) {
	for r, row := range l.legendRows {
		base := l.legendY + float64(r)*labelSize*lineGap + labelSize
		x := chartMargin
		for _, i := range row {
			fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%g" height="%g" fill="%s"/><text x="%.1f" y="%.1f">%s</text>`+"\n",
				x, base-legendSwatch+1, legendSwatch, legendSwatch, chartColors[i%len(chartColors)], x+legendSwatch+4, base, esc(c.series[i]))
			x += legendItemW(c.series[i])
		}
	}
}

func (c *chartSpec) drawAxis(b *strings.Builder, l *chartLayout) {
	right := l.left + l.plotW
	for _, t := range l.ticks {
		y := l.y(t)
		fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n",
			l.left, right, y, y, l.left-6, y+labelSize*0.35, esc(c.tick(t)))
	}
	if c.ref > 0 {
		y := l.y(c.ref)
		fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#777" stroke-dasharray="4 3"/>`+"\n", l.left, right, y, y)
	}
	fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#333"/>`+"\n", l.left, right, l.y(0), l.y(0))
	for gi, lines := range l.catLines {
		cx := l.left + (float64(gi)+0.5)*l.groupW
		for i, line := range lines {
			fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", cx, l.catY0+float64(i)*labelSize*lineGap, esc(line))
		}
	}
}

func (c *chartSpec) drawBars(b *strings.Builder, l *chartLayout) {
	for gi, g := range c.groups {
		// The group's bars side by side, centred in its slot: a server
		// absent from a load leaves no gap.
		x0 := l.left + (float64(gi)+0.5)*l.groupW - float64(len(g.bars))*l.barW/2
		for i, bar := range g.bars {
			x := x0 + float64(i)*l.barW
			cx := x + l.barW/2
			top := l.y(bar.value)
			fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>`+"\n",
				x+1, top, l.barW-2, l.y(0)-top, chartColors[bar.series%len(chartColors)], esc(bar.tip))
			if bar.hi > 0 {
				fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#222"/>`+"\n", cx, cx, l.y(bar.hi), l.y(bar.lo))
				top = math.Min(top, l.y(bar.hi))
			}
			switch l.valueMode {
			case valueFlat:
				fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="%g">%s</text>`+"\n", cx, top-3-valueSize*0.25, valueSize, esc(bar.label))
			case valueUpright:
				x, y := cx+valueSize*0.8/2-valueSize*0.25/2, top-3
				fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="%g" transform="rotate(-90 %.1f %.1f)">%s</text>`+"\n", x, y, valueSize, x, y, esc(bar.label))
			}
		}
	}
}
