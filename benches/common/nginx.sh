# nginx for the benchmark scripts (sourced by benches/load.sh, benches/profile.sh and
# benches/instructions.sh, with $work set): the 1 KiB page; `nginx_conf NAME WORKERS BODY`,
# which writes $work/nginx-NAME.conf around the http-level BODY (no access log, temporary files
# under $work) and starts it; `static_page ADDRESS`, the upstream every proxy is measured in
# front of: one worker serving the page at ADDRESS.
head -c 1024 /dev/zero | tr '\0' 'x' >"$work/page.html"
nginx_conf() { # name workers body
  cat >"$work/nginx-$1.conf" <<EOT
$( [ "$1" = auth ] && echo "load_module /usr/lib/nginx/modules/ngx_http_headers_more_filter_module.so;" )
worker_processes $2;
pid $work/nginx-$1.pid;
error_log $work/nginx-$1.error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/body-$1; proxy_temp_path $work/proxy-$1;
  fastcgi_temp_path $work/fcgi-$1; uwsgi_temp_path $work/uwsgi-$1; scgi_temp_path $work/scgi-$1;
$3
}
EOT
  nginx -c "$work/nginx-$1.conf"
}
static_page() { # address
  nginx_conf static 1 "  server { listen $1; root $work; location / { try_files /page.html =404; } }"
}
