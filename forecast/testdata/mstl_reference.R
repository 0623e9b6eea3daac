# Reference numbers for forecast/stl_test.go and forecast/mstl_test.go: R's stats::stl
# and forecast::mstl on fixed series. Run from forecast/testdata (R and the forecast
# package needed; CI does not run this, the tests only read the files it writes):
#
#   cd forecast/testdata && Rscript mstl_reference.R [path/to/Hourly-train.csv]
#
# Writes
#   stl_reference.csv   case,i,y,seasonal,trend,remainder  (every point of each case)
#   mstl_reference.csv  i,y,trend,seasonal24,seasonal168,remainder  (mstl of M4 H1)
#   mstl_forecast.csv   step,mean  (forecast(mstl(H1), method = "naive", h = 48))
# The STL cases are listed in stl_test.go with their arguments. The M4 series is H1,
# the first row of the M4 hourly training set (first column the id, values quoted,
# trailing cells empty), as msts(y, seasonal.periods = c(24, 168)).

suppressPackageStartupMessages(library(forecast))

args <- commandArgs(trailingOnly = TRUE)
m4 <- if (length(args) > 0) args[1] else "/work/shared/data/m4-hourly/Hourly-train.csv"
row <- read.csv(m4, header = TRUE, nrows = 1, colClasses = "character")
h1 <- as.numeric(unlist(row[1, -1]))
h1 <- h1[!is.na(h1)]

fmt <- function(v) trimws(formatC(v, digits = 12, format = "g"))
header <- sprintf("# %s, forecast %s, Rscript mstl_reference.R",
                  R.version.string, packageVersion("forecast"))

cases <- list(
  list(name = "co2-periodic", fit = stl(co2, s.window = "periodic")),
  list(name = "co2-13", fit = stl(co2, s.window = 13)),
  list(name = "nottem-7-robust", fit = stl(nottem, s.window = 7, robust = TRUE)),
  list(name = "nottem239-7-robust",
       fit = stl(ts(nottem[1:239], frequency = 12), s.window = 7, robust = TRUE)),
  list(name = "co2-35-t1-jumps1", fit = stl(co2, s.window = 35, s.degree = 1,
                                            s.jump = 1, t.jump = 1, l.jump = 1))
)
f <- file("stl_reference.csv", "w")
writeLines(c(header, "case,i,y,seasonal,trend,remainder"), f)
for (c in cases) {
  ts <- c$fit$time.series
  y <- rowSums(ts)
  writeLines(paste(c$name, seq_along(y), fmt(y), fmt(ts[, "seasonal"]), fmt(ts[, "trend"]),
                   fmt(ts[, "remainder"]), sep = ","), f)
}
close(f)

x <- msts(h1, seasonal.periods = c(24, 168))
d <- mstl(x)
f <- file("mstl_reference.csv", "w")
writeLines(c(header, "i,y,trend,seasonal24,seasonal168,remainder"), f)
writeLines(paste(seq_along(h1), fmt(d[, "Data"]), fmt(d[, "Trend"]), fmt(d[, "Seasonal24"]),
                 fmt(d[, "Seasonal168"]), fmt(d[, "Remainder"]), sep = ","), f)
close(f)

fc <- forecast(d, method = "naive", h = 48)
f <- file("mstl_forecast.csv", "w")
writeLines(c(header, "step,mean"), f)
writeLines(paste(seq_len(48), fmt(fc$mean), sep = ","), f)
close(f)
