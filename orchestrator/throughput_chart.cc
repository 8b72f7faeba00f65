#include "orchestrator/throughput_chart.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "fmt/format.h"
#include "orchestrator/reports.h"

namespace bitparity {

std::string ThroughputChartSvg(const std::string& title, const std::string& ylabel,
                               const std::vector<ThroughputSeries>& series) {
  const int w = 640, h = 320;
  const double L = 70, R = 20, T = 30, B = 46;
  const double pw = w - L - R, ph = h - T - B;
  // Every level any side measured, in order; each gets one slot on the x axis.
  std::set<int> level_set;
  double ymax = 0;
  bool missing = false;
  for (const auto& s : series) {
    for (size_t i = 0; i < s.concurrency.size() && i < s.tokens_per_s.size(); ++i) {
      level_set.insert(s.concurrency[i]);
      if (std::isfinite(s.tokens_per_s[i])) ymax = std::max(ymax, s.tokens_per_s[i]);
      else missing = true;
    }
  }
  const std::vector<int> levels(level_set.begin(), level_set.end());
  if (ymax <= 0) ymax = 1;
  ymax *= 1.1;
  auto X = [&](int level) {
    const size_t i = std::lower_bound(levels.begin(), levels.end(), level) - levels.begin();
    return levels.size() < 2 ? L + pw / 2 : L + pw * i / (levels.size() - 1);
  };
  auto Y = [&](double v) { return T + ph - v / ymax * ph; };
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"throughput\" width=\"{0}\" height=\"{1}\" "
      "viewBox=\"0 0 {0} {1}\" role=\"img\" aria-label=\"{2}\">\n",
      w, h, XmlEscape(title));
  s += fmt::format("<text x=\"{}\" y=\"18\" class=\"ct\">{}</text>\n", L, XmlEscape(title));
  s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" class=\"pa\" fill=\"#fcfcfc\" stroke=\"#ccc\"/>\n",
                   L, T, pw, ph);
  for (int i = 0; i <= 4; ++i) {
    const double v = ymax * i / 4, y = Y(v);
    s += fmt::format("<line x1=\"{}\" x2=\"{}\" y1=\"{:.1f}\" y2=\"{:.1f}\" class=\"gr\" stroke=\"#eee\"/>"
                     "<text x=\"{}\" y=\"{:.1f}\" class=\"tk\" text-anchor=\"end\">{}</text>\n",
                     L, L + pw, y, y, L - 6, y + 4, Fig(v, 3));
  }
  for (int level : levels) {
    s += fmt::format("<text x=\"{:.1f}\" y=\"{}\" class=\"tk level\" text-anchor=\"middle\">{}</text>\n", X(level),
                     T + ph + 16, level);
  }
  s += fmt::format("<text x=\"{}\" y=\"{}\" class=\"al\" text-anchor=\"middle\">concurrent streams</text>\n",
                   L + pw / 2, h - 20);
  s += fmt::format("<text x=\"14\" y=\"{0}\" class=\"al\" text-anchor=\"middle\" transform=\"rotate(-90 14 {0})\">{1}"
                   "</text>\n",
                   T + ph / 2, XmlEscape(ylabel));
  for (const auto& se : series) {
    std::string points, markers;
    for (size_t i = 0; i < se.concurrency.size() && i < se.tokens_per_s.size(); ++i) {
      const double v = se.tokens_per_s[i];
      if (!std::isfinite(v)) continue;
      points += fmt::format("{:.1f},{:.1f} ", X(se.concurrency[i]), Y(v));
      markers += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"><title>{} at {}: {} tokens/s"
                             "</title></circle>\n",
                             X(se.concurrency[i]), Y(v), se.color, XmlEscape(se.name), se.concurrency[i], Fig(v));
    }
    s += fmt::format("<polyline class=\"side\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"><title>{}"
                     "</title></polyline>\n",
                     se.color, points, XmlEscape(se.name));
    s += markers;
  }
  double lx = L + 10;
  for (const auto& se : series) {
    s += fmt::format("<line x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"2\"/>"
                     "<text x=\"{}\" y=\"{}\" class=\"tk\">{}</text>\n",
                     lx, lx + 18, h - 6, h - 6, se.color, lx + 22, h - 2, XmlEscape(se.name));
    lx += 34 + 6.0 * se.name.size();
  }
  if (missing) {
    s += fmt::format("<text x=\"{}\" y=\"{}\" class=\"tk\" text-anchor=\"end\">no point: the streams never all decoded "
                     "at once</text>\n",
                     L + pw - 4, T + 12);
  }
  s += "</svg>\n";
  return s;
}

}  // namespace bitparity
