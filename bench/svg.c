/* SPDX-License-Identifier: MIT */
/* Log-log line charts as SVG text: see svg.h. */
#define _GNU_SOURCE
#include "svg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PANEL_W 460.0
#define PANEL_H 340.0
#define MARGIN_L 70.0
#define MARGIN_R 20.0
#define MARGIN_T 60.0
#define MARGIN_B 60.0
#define LEGEND_H 30.0

static void put_escaped(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		default: fputc(*s, f);
		}
	}
}

/* 10^e as 1, 10, 100, 1k, ... 100G, or 1e-3 style below 1 and past 10^11. */
static void decade_label(char *buf, size_t len, int e)
{
	static const char *const suffix[] = {"", "k", "M", "G"};

	if (e < 0 || e > 11)
		snprintf(buf, len, "1e%d", e);
	else
		snprintf(buf, len, "%.0f%s", pow(10, e % 3), suffix[e / 3]);
}

static int ok_point(const struct svg_series *s, size_t i)
{
	return s->x[i] > 0 && s->y[i] > 0 && isfinite(s->x[i]) && isfinite(s->y[i]);
}

/* Decade bounds [*lo, *hi] (exponents) covering every valid point. */
static void bounds(const struct svg_panel *p, int want_x, int *lo, int *hi)
{
	double mn = INFINITY, mx = -INFINITY;

	for (size_t s = 0; s < p->nseries; s++)
		for (size_t i = 0; i < p->series[s].n; i++) {
			double v = want_x ? p->series[s].x[i] : p->series[s].y[i];

			if (!ok_point(&p->series[s], i))
				continue;
			mn = fmin(mn, v);
			mx = fmax(mx, v);
		}
	if (!isfinite(mn)) {
		*lo = 0;
		*hi = 1;
		return;
	}
	*lo = (int)floor(log10(mn) + 1e-9);
	*hi = (int)ceil(log10(mx) - 1e-9);
	if (*hi <= *lo)
		*hi = *lo + 1;
}

static void panel(FILE *f, const struct svg_panel *p, double ox, double oy)
{
	double pw = PANEL_W - MARGIN_L - MARGIN_R, ph = PANEL_H - MARGIN_T - MARGIN_B;
	double x0 = ox + MARGIN_L, y0 = oy + MARGIN_T; /* plot area's top left */
	int xlo, xhi, ylo, yhi;
	char lab[32];

	bounds(p, 1, &xlo, &xhi);
	bounds(p, 0, &ylo, &yhi);
#define PX(v) (x0 + (log10(v) - xlo) / (xhi - xlo) * pw)
#define PY(v) (y0 + ph - (log10(v) - ylo) / (yhi - ylo) * ph)
	fprintf(f, "<g class=\"panel\">\n<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
		   "font-size=\"15\" font-weight=\"bold\">",
		x0 + pw / 2, oy + MARGIN_T - 14);
	put_escaped(f, p->title);
	fputs("</text>\n", f);
	fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
		   "stroke=\"#444\"/>\n",
		x0, y0, pw, ph);
	for (int e = xlo; e <= xhi; e++) {
		double x = x0 + (double)(e - xlo) / (xhi - xlo) * pw;

		decade_label(lab, sizeof(lab), e);
		fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
			   "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"11\">%s</text>\n",
			x, y0, x, y0 + ph, x, y0 + ph + 15, lab);
	}
	for (int e = ylo; e <= yhi; e++) {
		double y = y0 + ph - (double)(e - ylo) / (yhi - ylo) * ph;

		decade_label(lab, sizeof(lab), e);
		fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
			   "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\">%s</text>\n",
			x0, y, x0 + pw, y, x0 - 6, y + 4, lab);
	}
	fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"13\">",
		x0 + pw / 2, y0 + ph + 38);
	put_escaped(f, p->xlabel);
	fputs("</text>\n", f);
	fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"13\" "
		   "transform=\"rotate(-90 %.1f %.1f)\">",
		ox + 18, y0 + ph / 2, ox + 18, y0 + ph / 2);
	put_escaped(f, p->ylabel);
	fputs("</text>\n", f);
	for (size_t s = 0; s < p->nseries; s++) {
		const struct svg_series *sr = &p->series[s];

		fputs("<polyline class=\"series\" data-name=\"", f);
		put_escaped(f, sr->name);
		fputs("\" fill=\"none\" stroke-width=\"2\" stroke=\"", f);
		put_escaped(f, sr->color);
		fputs("\" points=\"", f);
		for (size_t i = 0; i < sr->n; i++)
			if (ok_point(sr, i))
				fprintf(f, "%.1f,%.1f ", PX(sr->x[i]), PY(sr->y[i]));
		fputs("\"/>\n", f);
		for (size_t i = 0; i < sr->n; i++)
			if (ok_point(sr, i)) {
				fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"",
					PX(sr->x[i]), PY(sr->y[i]));
				put_escaped(f, sr->color);
				fputs("\"/>\n", f);
			}
	}
#undef PX
#undef PY
	fputs("</g>\n", f);
}

char *svg_loglog(const char *title, const struct svg_panel *panels, size_t npanels, size_t *len)
{
	double w = PANEL_W * (double)(npanels ? npanels : 1), h = PANEL_H + LEGEND_H + 30;
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);

	if (!f)
		return NULL;
	fprintf(f,
		"<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%.0f\" "
		"height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\">\n"
		"<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
		"<text x=\"%.1f\" y=\"22\" text-anchor=\"middle\" font-size=\"17\">",
		w, h, w, h, w / 2);
	put_escaped(f, title);
	fputs("</text>\n", f);
	for (size_t i = 0; i < npanels; i++)
		panel(f, &panels[i], PANEL_W * (double)i, 20);
	if (npanels) {
		double lx = 20, ly = PANEL_H + 20 + LEGEND_H / 2;

		fputs("<g class=\"legend\">\n", f);
		for (size_t s = 0; s < panels[0].nseries; s++) {
			const struct svg_series *sr = &panels[0].series[s];

			fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
				   "stroke-width=\"3\" stroke=\"",
				lx, ly, lx + 24, ly);
			put_escaped(f, sr->color);
			fprintf(f, "\"/><text x=\"%.1f\" y=\"%.1f\" font-size=\"13\">", lx + 30,
				ly + 4);
			put_escaped(f, sr->name);
			fputs("</text>\n", f);
			lx += 40 + 8 * (double)strlen(sr->name) + 20;
		}
		fputs("</g>\n", f);
	}
	fputs("</svg>\n", f);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	if (len)
		*len = n;
	return buf;
}
