# bench/latency.gp - latency percentiles vs offered load, Herald and RabbitMQ (compare.sh).
# gnuplot -e "datafile='latency.dat'; outfile='latency.png'" latency.gp
set terminal pngcairo size 1000,620 font ",10" noenhanced
set output outfile
set title "End-to-end latency vs offered load (1 publisher -> topic -> 10 subscribers)"
set xlabel "offered deliveries/s"
set ylabel "latency (ms)"
set logscale xy
set grid xtics ytics mytics
set key top left
set format x "%.0s%c"
plot datafile using 1:2 with linespoints lw 2 lc rgb "#1f77b4" pt 7 title "Herald p50", \
     datafile using 1:4 with linespoints lw 2 lc rgb "#1f77b4" pt 5 dt 2 title "Herald p99", \
     datafile using 1:5 with linespoints lw 2 lc rgb "#1f77b4" pt 9 dt 3 title "Herald p99.9", \
     datafile using 1:6 with linespoints lw 2 lc rgb "#d62728" pt 7 title "RabbitMQ p50", \
     datafile using 1:8 with linespoints lw 2 lc rgb "#d62728" pt 5 dt 2 title "RabbitMQ p99", \
     datafile using 1:9 with linespoints lw 2 lc rgb "#d62728" pt 9 dt 3 title "RabbitMQ p99.9", \
     datafile using 1:12 with linespoints lw 1 lc rgb "#7f7f7f" pt 5 dt 2 title "raw relay p99 (floor)"
