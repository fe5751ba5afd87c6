/*
 * cluster/dashboard.c - the dashboard page (see dashboard.h).
 */
#include "cluster/dashboard.h"

const char admin_dashboard_html[] =
"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Herald</title></head>\n"
"<body><h1>Herald</h1><p>The dashboard is being built.</p></body></html>\n";
const size_t admin_dashboard_html_len = sizeof(admin_dashboard_html) - 1;
