drop function if exists rec_token_authenticate(
    text, text, timestamptz, interval, interval, interval, text
);
