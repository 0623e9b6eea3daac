# Reference numbers for forecast/theta_test.go: R's forecast::thetaf on four fixed
# series. Run from forecast/testdata (R and the forecast package needed; CI does not
# run this, the tests only read the files it writes):
#
#   cd forecast/testdata && Rscript theta_reference.R [path/to/Hourly-train.csv]
#
# Writes
#   theta_series.csv     name,period,h,value  (the input series, one value per row)
#   theta_reference.csv  name,step,mean,lo80,hi80,lo95,hi95  (thetaf's output)
#   theta_params.csv     name,seasonal,alpha,drift,sigma2  (thetaf's fitted model)
# The M4 series is H1, the first row of the M4 hourly training set (first column the
# id, values quoted, trailing cells empty).

suppressPackageStartupMessages(library(forecast))

args <- commandArgs(trailingOnly = TRUE)
m4 <- if (length(args) > 0) args[1] else "/work/shared/data/m4-hourly/Hourly-train.csv"
row <- read.csv(m4, header = TRUE, nrows = 1, colClasses = "character")
h1 <- as.numeric(unlist(row[1, -1]))
h1 <- h1[!is.na(h1)]

series <- list(
  list(name = "AirPassengers", y = AirPassengers, h = 24),
  list(name = "WWWusage", y = WWWusage, h = 10),
  list(name = "USAccDeaths", y = USAccDeaths, h = 24),
  list(name = "M4-H1", y = ts(h1, frequency = 24), h = 48)
)

fmt <- function(v) trimws(formatC(v, digits = 17, format = "g"))
header <- sprintf("# %s, forecast %s, Rscript theta_reference.R",
                  R.version.string, packageVersion("forecast"))

sfile <- file("theta_series.csv", "w")
rfile <- file("theta_reference.csv", "w")
pfile <- file("theta_params.csv", "w")
writeLines(c(header, "name,period,h,value"), sfile)
writeLines(c(header, "name,step,mean,lo80,hi80,lo95,hi95"), rfile)
writeLines(c(header, "name,seasonal,alpha,drift,sigma2"), pfile)

for (s in series) {
  y <- s$y
  writeLines(paste(s$name, frequency(y), s$h, fmt(as.numeric(y)), sep = ","), sfile)
  fc <- thetaf(y, h = s$h, level = c(80, 95))
  writeLines(paste(s$name, seq_len(s$h), fmt(as.numeric(fc$mean)),
                   fmt(fc$lower[, 1]), fmt(fc$upper[, 1]),
                   fmt(fc$lower[, 2]), fmt(fc$upper[, 2]), sep = ","), rfile)
  # thetaf does not return whether it deseasonalised; the fitted values of a
  # seasonal fit are SES fits times the indices, so compare them with a plain SES.
  seasonal <- frequency(y) > 1 &&
    !isTRUE(all.equal(as.numeric(fc$fitted), as.numeric(ses(y)$fitted)))
  writeLines(paste(s$name, seasonal, fmt(fc$model$alpha), fmt(fc$model$drift),
                   fmt(fc$model$sigma), sep = ","), pfile)
}
close(sfile)
close(rfile)
close(pfile)
