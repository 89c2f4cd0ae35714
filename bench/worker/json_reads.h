/* json_reads.h - the JSON reads of one event as the worker makes them
 * (apply_parse, batch.c's lock_key, then the type's handler and
 * resolve_user), written once for both sides of bench/worker/json_bench.c.
 *
 * Included once per side, with these defined: V (a value), GET(v, path),
 * STR(v, path), INT(v, path, int64_t *), BOOL(v, path, bool *), FIRST(array),
 * FOR_EACH(array, element) (a for header), OK(v) and READS (the name of the function). The
 * function returns a checksum of what it read, so that both sides can be
 * checked to read the same and nothing is optimised away. */

#ifndef JSON_READS_ONCE
#define JSON_READS_ONCE
static uint64_t str_sum(const char *s) {
    return s ? strlen(s) + (unsigned char)s[0] : 7;
}
#endif

static uint64_t READS(V root) {
    uint64_t sum = 0;
    int64_t n = 0;
    bool b = false;
#define S(v, path) (sum = sum * 31 + str_sum(STR(v, path)))
#define I(v, path) (sum = sum * 31 + (INT(v, path, &n) ? (uint64_t)n : 3))
#define B(v, path) (sum = sum * 31 + (BOOL(v, path, &b) ? (uint64_t)b + 1 : 5))
    const char *type = STR(root, "type");
    V obj = GET(root, "data.object");
    S(root, "id"), S(root, "api_version"), I(root, "created"), B(root, "livemode");
    S(obj, "customer"), S(obj, "object"), S(obj, "metadata.user_id"); /* lock_key */
    if (type == NULL) return sum;
    if (strncmp(type, "checkout.session.", 17) == 0) {
        S(obj, "mode"), S(obj, "payment_status"), S(obj, "id"), S(obj, "metadata.credit_pack");
        S(obj, "metadata.price_id"), S(obj, "payment_intent"), S(obj, "subscription");
        S(obj, "client_reference_id");
    } else if (strncmp(type, "customer.subscription.", 22) == 0) {
        V item = FIRST(GET(obj, "items.data"));
        if (OK(item)) S(item, "price"), S(item, "plan"), I(item, "current_period_start");
        S(obj, "id"), S(obj, "status"), S(obj, "plan"), I(obj, "current_period_start");
        I(obj, "current_period_end"), I(obj, "created"), B(obj, "cancel_at_period_end");
        S(obj, "client_reference_id");
    } else if (strncmp(type, "invoice.", 8) == 0) {
        S(obj, "id"), S(obj, "parent.subscription_details.subscription"), S(obj, "subscription");
        V lines = GET(obj, "lines.data"), line;
        for (int pass = 0; pass < 2; pass++)
            FOR_EACH(lines, line) {
                S(line, "type"), S(line, "parent.type"), B(line, "proration");
                S(line, "subscription_item"), I(line, "period.end"), I(line, "amount");
                S(line, "pricing.price_details.price"), S(line, "price"), S(line, "plan");
            }
        S(obj, "client_reference_id"), S(obj, "parent.subscription_details.metadata.user_id");
        S(obj, "subscription_details.metadata.user_id");
    } else if (strcmp(type, "charge.refunded") == 0) {
        S(obj, "id"), S(obj, "payment_intent"), I(obj, "amount"), I(obj, "amount_refunded");
        S(obj, "invoice");
    }
#undef S
#undef I
#undef B
    return sum;
}
