package ui

import (
	"fmt"
	"html/template"
	"math"
	"strings"
)

// Chart is a chart drawn on the server as SVG: no script, no style
// attribute (the CSP allows none), presentation attributes only. The
// "chart" template shows it in a <figure> with its values in a table
// beside it, so a screen reader or a person without colour vision reads
// the same numbers.
type Chart struct {
	ID, Title string
	// Labels name the x positions (days, say); each series has one value
	// per label.
	Labels []string
	Series []Series
	// Kind is "bar" (stacked bars) or "line".
	Kind string
	// Unit follows each value in the table ("%", "").
	Unit string
	// Max is the top of the y axis (0: the largest value, or stack).
	Max float64
	// Drawn: the values are data even when all are 0 (a rate of 0 %):
	// the chart is drawn instead of saying there is no data.
	Drawn bool
}

// Series is one named row of values.
type Series struct {
	Name   string
	Values []float64
}

// palette has colours distinguishable with the common colour-vision
// deficiencies (Okabe–Ito).
var palette = []string{"#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"}

const (
	chartW, chartH         = 720, 240
	padL, padR, padT, padB = 48, 12, 12, 40
	legendRow              = 18
	maxLegend              = 8
)

// SVG draws the chart.
func (c Chart) SVG() template.HTML {
	top := c.Max
	if top <= 0 {
		top = c.largest()
	}
	if top <= 0 {
		top = 1
	}
	top = niceCeil(top)
	n := len(c.Labels)
	legend := min(len(c.Series), maxLegend)
	h := chartH + legend*legendRow
	var b strings.Builder
	id := template.HTMLEscapeString(c.ID)
	fmt.Fprintf(&b, `<svg viewBox="0 0 %d %d" role="img" aria-labelledby="%s-t" xmlns="http://www.w3.org/2000/svg">`, chartW, h, id)
	fmt.Fprintf(&b, `<title id="%s-t">%s</title>`, id, template.HTMLEscapeString(c.Title))
	plotW, plotH := float64(chartW-padL-padR), float64(chartH-padT-padB)
	// Grid lines and y labels at 0, ¼, ½, ¾ and the top.
	for i := 0; i <= 4; i++ {
		v := top * float64(i) / 4
		y := float64(padT) + plotH - plotH*float64(i)/4
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#dde1e8" stroke-width="1"/>`, padL, y, chartW-padR, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="11" text-anchor="end" fill="#5b6475">%s</text>`, padL-6, y+4, template.HTMLEscapeString(short(v)+c.Unit))
	}
	if n > 0 {
		step := plotW / float64(n)
		every := max(1, n/12)
		for i, l := range c.Labels {
			if i%every != 0 {
				continue
			}
			x := float64(padL) + step*float64(i) + step/2
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="11" text-anchor="middle" fill="#5b6475">%s</text>`, x, chartH-padB+16, template.HTMLEscapeString(l))
		}
		switch c.Kind {
		case "line":
			for si, s := range c.Series {
				var pts []string
				for i := 0; i < n && i < len(s.Values); i++ {
					x := float64(padL) + step*float64(i) + step/2
					y := float64(padT) + plotH - plotH*math.Min(s.Values[i], top)/top
					pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
				}
				col := palette[si%len(palette)]
				fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, col, strings.Join(pts, " "))
				for _, p := range pts {
					x, y, _ := strings.Cut(p, ",")
					fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="2.5" fill="%s"/>`, x, y, col)
				}
			}
		default:
			bw := math.Max(1, step*0.7)
			for i := 0; i < n; i++ {
				acc := 0.0
				x := float64(padL) + step*float64(i) + (step-bw)/2
				for si, s := range c.Series {
					if i >= len(s.Values) || s.Values[i] <= 0 {
						continue
					}
					hgt := plotH * s.Values[i] / top
					y := float64(padT) + plotH - plotH*acc/top - hgt
					acc += s.Values[i]
					fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s, %s: %s</title></rect>`,
						x, y, bw, hgt, palette[si%len(palette)], template.HTMLEscapeString(c.Labels[i]), template.HTMLEscapeString(s.Name), short(s.Values[i])+c.Unit)
				}
			}
		}
	}
	for i := 0; i < legend; i++ {
		y := chartH + i*legendRow
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/>`, padL, y, palette[i%len(palette)])
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="12" fill="#1c2230">%s</text>`, padL+18, y+10, template.HTMLEscapeString(c.Series[i].Name))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // every text above is escaped
}

// Empty reports whether there is no value at all to draw.
func (c Chart) Empty() bool { return !c.Drawn && c.largest() == 0 }

// Rows are the table beside the chart: one row per label.
func (c Chart) Rows() [][]string {
	out := make([][]string, len(c.Labels))
	for i, l := range c.Labels {
		row := []string{l}
		for _, s := range c.Series {
			v := 0.0
			if i < len(s.Values) {
				v = s.Values[i]
			}
			row = append(row, short(v)+c.Unit)
		}
		out[i] = row
	}
	return out
}

func (c Chart) largest() float64 {
	top := 0.0
	for i := range c.Labels {
		stack := 0.0
		for _, s := range c.Series {
			if i < len(s.Values) {
				if c.Kind == "line" {
					top = math.Max(top, s.Values[i])
				} else {
					stack += s.Values[i]
				}
			}
		}
		top = math.Max(top, stack)
	}
	return top
}

// niceCeil rounds v up to 1, 2, 2.5 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// short prints a value without needless decimals.
func short(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}
