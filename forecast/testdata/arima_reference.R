# Reference numbers for forecast/arima_test.go, from R's stats::arima (through
# forecast::Arima), forecast::auto.arima, forecast::ndiffs/nsdiffs and urca::ur.kpss.
#
# Regenerate (needs R with forecast, urca and jsonlite; run from the repo root):
#
#   Rscript forecast/testdata/arima_reference.R /work/shared/data/m4-hourly/Hourly-train.csv \
#     > forecast/testdata/arima_reference.json
#
# The JSON holds the series themselves (so the Go tests need neither R nor the M4
# files); for each fixed model and for method "CSS" and "CSS-ML" (R's default): the
# coefficients in R's order (ar, ma, sar, sma, intercept/drift), sigma2, loglik,
# AICc (NA for CSS, as R reports it), the point forecasts and the 80%/95% bounds of
# forecast.Arima; the KPSS level statistics of ur.kpss(type = "mu", use.lag =
# trunc(3*sqrt(n)/13)) as ndiffs runs it, ndiffs, nsdiffs and the seasonal strength
# of nsdiffs' "seas" test; and the orders auto.arima picks with its defaults.
suppressPackageStartupMessages({
  library(forecast)
  library(urca)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
m4 <- read.csv(args[1], stringsAsFactors = FALSE, nrows = 1)
h1 <- as.numeric(m4[1, -1])
h1 <- h1[!is.na(h1)]
h1 <- ts(tail(h1, 336), frequency = 24)

series <- list(
  WWWusage = WWWusage,
  logAirPassengers = log(AirPassengers),
  AirPassengers = AirPassengers,
  lh = lh,
  USAccDeaths = USAccDeaths,
  H1last336 = h1
)

fixed <- list(
  list(series = "WWWusage", order = c(1, 1, 1), seasonal = c(0, 0, 0), constant = FALSE, h = 10),
  list(series = "logAirPassengers", order = c(0, 1, 1), seasonal = c(0, 1, 1), constant = FALSE, h = 24),
  list(series = "lh", order = c(2, 0, 0), seasonal = c(0, 0, 0), constant = TRUE, h = 12),
  list(series = "lh", order = c(1, 0, 1), seasonal = c(0, 0, 0), constant = TRUE, h = 12),
  list(series = "WWWusage", order = c(2, 1, 0), seasonal = c(0, 0, 0), constant = TRUE, h = 10),
  list(series = "USAccDeaths", order = c(1, 0, 1), seasonal = c(0, 1, 1), constant = TRUE, h = 24),
  list(series = "H1last336", order = c(1, 0, 1), seasonal = c(1, 1, 0), constant = FALSE, h = 48)
)

num <- function(x) unname(as.numeric(x))

fits <- list()
for (f in fixed) {
  y <- series[[f$series]]
  for (method in c("CSS", "CSS-ML")) {
    d <- f$order[2] + f$seasonal[2]
    fit <- Arima(y, order = f$order, seasonal = list(order = f$seasonal, period = frequency(y)),
      include.mean = f$constant && d == 0, include.drift = f$constant && d == 1,
      method = method)
    fc <- forecast(fit, h = f$h, level = c(80, 95))
    fits[[length(fits) + 1]] <- list(
      series = f$series, order = f$order, seasonal = f$seasonal, period = frequency(y),
      constant = f$constant, method = method,
      coef = num(coef(fit)), names = names(coef(fit)),
      sigma2 = fit$sigma2, loglik = fit$loglik,
      aicc = if (is.null(fit$aicc) || is.na(fit$aicc)) NULL else fit$aicc,
      mean = num(fc$mean),
      lower80 = num(fc$lower[, 1]), upper80 = num(fc$upper[, 1]),
      lower95 = num(fc$lower[, 2]), upper95 = num(fc$upper[, 2])
    )
  }
}

kpss <- function(x) {
  x <- as.numeric(x)
  ur.kpss(x, type = "mu", use.lag = trunc(3 * sqrt(length(x)) / 13))@teststat[1]
}
tests <- list()
for (name in c("WWWusage", "AirPassengers", "lh", "USAccDeaths", "H1last336")) {
  y <- series[[name]]
  m <- frequency(y)
  tests[[name]] <- list(
    kpss = kpss(y), kpss_diff = kpss(diff(y)),
    ndiffs = ndiffs(y),
    nsdiffs = if (m > 1) nsdiffs(y) else 0,
    seas_strength = if (m > 1) forecast:::seas.heuristic(y) else NULL
  )
}

auto <- list()
for (name in c("WWWusage", "AirPassengers", "USAccDeaths", "H1last336")) {
  fit <- auto.arima(series[[name]])
  auto[[name]] <- list(
    arma = fit$arma[c(1, 6, 2, 3, 7, 4, 5)], # p d q P D Q m
    constant = length(grep("intercept|drift", names(coef(fit)))) > 0,
    name = arimaorder_string <- forecast:::arima.string(fit),
    aicc = fit$aicc
  )
}

out <- list(
  source = sprintf("%s, forecast %s, urca %s: Rscript forecast/testdata/arima_reference.R Hourly-train.csv",
    R.version.string, packageVersion("forecast"), packageVersion("urca")),
  series = lapply(series, function(y) list(period = frequency(y), y = num(y))),
  fits = fits,
  tests = tests,
  auto = auto
)
cat(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"), "\n")
