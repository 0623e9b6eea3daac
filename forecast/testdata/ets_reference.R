# Reference numbers for forecast/ets_test.go, from R's forecast::ets.
#
# Regenerate (needs R with the forecast and jsonlite packages; run from the repo root):
#
#   Rscript forecast/testdata/ets_reference.R /work/shared/data/m4-hourly/Hourly-train.csv \
#     > forecast/testdata/ets_reference.json
#
# The JSON holds the series themselves (so the Go tests need neither R nor the M4
# files), then for each fixed model: the smoothing parameters, the initial states
# (fit$initstate: l, b, then s1..sm as R orders them, s1 the newest), R's loglik
# (-0.5 * n*log(SSE) [+ sum log|yhat|]), AICc, sigma2, the point forecasts and the
# 80%/95% bounds of forecast.ets, and for each series the model ets() picks by AICc.
suppressPackageStartupMessages({
  library(forecast)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
m4 <- read.csv(args[1], stringsAsFactors = FALSE, nrows = 1)
h1 <- as.numeric(m4[1, -1])
h1 <- h1[!is.na(h1)]
h1 <- ts(tail(h1, 336), frequency = 24)

series <- list(
  AirPassengers = AirPassengers,
  USAccDeaths = USAccDeaths,
  WWWusage = WWWusage,
  Nile = Nile,
  H1last336 = h1
)

models <- list(
  AirPassengers = c("AAA", "AAdA", "MAM", "MAdM", "MNM"),
  USAccDeaths = c("ANA", "AAdA", "MAdM"),
  WWWusage = c("ANN", "AAN", "AAdN", "MAN"),
  Nile = c("ANN", "MNN"),
  H1last336 = c("ANA", "AAdA", "MNA", "MNM")
)

out <- list(
  source = paste0(
    R.version.string, "; forecast ", as.character(packageVersion("forecast")),
    "; ets(y, model = <spec>, damped = <d>) with default arguments (opt.crit = \"lik\", ",
    "bounds = \"both\", ic = \"aicc\"); forecast(fit, h, level = c(80, 95)). ",
    "H1last336 is the last 336 points of series H1 of M4 Hourly-train.csv, frequency 24."
  ),
  series = list(),
  fits = list(),
  auto = list()
)

for (name in names(series)) {
  y <- series[[name]]
  out$series[[name]] <- list(period = frequency(y), y = as.numeric(y))
  h <- if (frequency(y) > 1) 2 * frequency(y) else 10
  for (spec in models[[name]]) {
    damped <- substr(spec, 2, 3) == "Ad"
    model <- paste0(substr(spec, 1, 1), substr(spec, 2, 2), substr(spec, nchar(spec), nchar(spec)))
    fit <- ets(y, model = model, damped = damped)
    fc <- forecast(fit, h = h, level = c(80, 95))
    par <- fit$par
    get <- function(k, def) if (is.na(par[k])) def else unname(par[k])
    out$fits[[length(out$fits) + 1]] <- list(
      series = name,
      spec = fit$method,
      alpha = get("alpha", 0), beta = get("beta", 0), gamma = get("gamma", 0), phi = get("phi", 1),
      init = I(unname(fit$initstate)),
      loglik = fit$loglik, aicc = fit$aicc, sigma2 = fit$sigma2,
      mean = as.numeric(fc$mean),
      lower80 = as.numeric(fc$lower[, 1]), upper80 = as.numeric(fc$upper[, 1]),
      lower95 = as.numeric(fc$lower[, 2]), upper95 = as.numeric(fc$upper[, 2])
    )
  }
  auto <- ets(y)
  out$auto[[name]] <- list(spec = auto$method, aicc = auto$aicc)
}

cat(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), "\n")
