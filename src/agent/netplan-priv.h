/* Shared by netplan.c (the thread, the view, instances) and
 * netplan_apply.c (making the node match a view). */
#pragma once

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>

#include "agent/netplan.h"
#include "lib/err.h"

struct st_netplan {
    char *node;
    char *data_dir;
    char *netns_dir; /* <data_dir>/netns */
    char *vtep;
    char *ext_bridge;
    char *controller_url;
    char *token;
    unsigned wait_s;
    const int *stop;

    struct st_agent_client *client; /* the thread's */
    pthread_t thread;
    bool started;

    pthread_mutex_t lock; /* one apply at a time; guards everything below */
    json_t *view;         /* the last node view, or NULL */
    char digest[17];
    char *fw_applied;     /* the ruleset text last applied, or NULL */
    json_t *fw_grants;    /* what it allowed each port (st_fw_port_grants), or NULL */
    json_t *reported;     /* {"<port>": "ACTIVE"} last sent */
    json_t *plugged;      /* {"<port>": "ACTIVE"} of the last apply */
    json_t *router_rules; /* {"<router>": NAT ruleset text last applied in its namespace} */
};

/* Makes the node match np->view (lock held). Errors of single items are
 * logged and skipped, so one bad port does not keep the rest unplugged;
 * the first is returned. */
int netplan_apply(struct st_netplan *np, struct st_err **err);

/* A gratuitous ARP from each port of a server just plugged: its address
 * may have been another MAC's a moment ago (lock held; errors logged). */
void netplan_announce(struct st_netplan *np, const char *server_id);

/* Names: "<prefix><first n hex digits of the uuid>" into buf (16 bytes). */
void netplan_name(const char *prefix, const char *uuid, size_t n, char buf[16]);
